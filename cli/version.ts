/** The package version, read from package.json next to the code (works from cli/ and from dist/cli/). */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE_NAME = 'runmesh';
// cli/ is one level below the package root, dist/cli/ two; look a little further for safety.
const MAX_LEVELS = 4;

/** `0.1.0`, or `unknown` if package.json cannot be found (a broken install, not a usage error). */
export function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let level = 0; level < MAX_LEVELS; level++) {
    dir = dirname(dir);
    const version = versionIn(join(dir, 'package.json'));
    if (version !== undefined) return version;
  }
  return 'unknown';
}

function versionIn(path: string): string | undefined {
  try {
    const pkg = JSON.parse(readFileSync(path, 'utf8')) as { name?: unknown; version?: unknown };
    return pkg.name === PACKAGE_NAME && typeof pkg.version === 'string' ? pkg.version : undefined;
  } catch {
    return undefined;
  }
}
