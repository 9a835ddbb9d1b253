/** Locates the package root from compiled (dist/) or source (vitest) modules alike. */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

export function repoRoot(): string {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, 'proto', 'runmesh'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('runmesh package root not found');
    dir = up;
  }
  return (cached = dir);
}
