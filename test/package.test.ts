/**
 * The package as an operator installs it: `npm pack` of the built tree,
 * installed into a clean directory, and the installed `runmesh` run: --version,
 * --help, and `runmesh dev` with one agent running a submitted job. The
 * suite's longest test (~30 s on an idle 2-core machine, most of it npm).
 *
 * Offline: `npm i -g ./runmesh-*.tgz` resolves the package's version ranges
 * against the registry (packuments), which `npm ci` never caches (it fetches
 * tarballs by the lockfile's URL and integrity), so a global install cannot
 * run offline. Instead the tarball goes into a clean directory with a lockfile
 * made from ours (runmesh from the tarball, our production dependencies at the
 * versions CI tested), and `npm ci --offline` installs it from the cache the
 * suite's own `npm ci` filled: the same package layout, the same bin link,
 * `prepare` not run (npm runs it for git and directory installs only; had it
 * run, there is no tsconfig or source to build in the tarball), no network.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, tempDir } from './support/processes.js';
import { waitUntil } from './support/wait.js';

const exec = promisify(execFile);
const NPM_TIMEOUT_MS = 120_000;

interface LockEntry {
  version: string;
  resolved?: string;
  dev?: boolean;
  link?: boolean;
  [field: string]: unknown;
}

let dir: string;
let bin: string;
let env: NodeJS.ProcessEnv;
const started: ReturnType<typeof spawn>[] = [];

/** package-lock.json for a directory that depends on `tarball` only: our production dependencies, as locked. */
function lockFor(tarball: string): object {
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  const root = lock.packages['']!;
  const integrity = `sha512-${createHash('sha512')
    .update(readFileSync(join(dir, tarball)))
    .digest('base64')}`;
  const packages: Record<string, unknown> = {
    '': { name: 'runmesh-install', dependencies: { runmesh: `file:${tarball}` } },
    'node_modules/runmesh': { ...root, resolved: `file:${tarball}`, integrity, devDependencies: undefined, scripts: undefined },
  };
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (!path.startsWith('node_modules/') || entry.dev || entry.link) continue;
    // npm leaves `resolved` out of some entries; without it the registry would be asked where the tarball is.
    const name = path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
    packages[path] = { resolved: `https://registry.npmjs.org/${name}/-/${name.split('/').pop()}-${entry.version}.tgz`, ...entry };
  }
  return { name: 'runmesh-install', lockfileVersion: 3, requires: true, packages };
}

beforeAll(async () => {
  dir = await tempDir('runmesh-package-');
  // The tree is built (npm test builds first): --ignore-scripts skips `prepare`, which would build it again.
  const packed = await exec('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], {
    cwd: ROOT,
    timeout: NPM_TIMEOUT_MS,
  });
  const [{ filename, files }] = JSON.parse(packed.stdout) as [{ filename: string; files: { path: string }[] }];
  const shipped = files.map((f) => f.path);
  expect(shipped).toEqual(
    expect.arrayContaining(['bin/runmesh.js', 'dist/cli/main.js', 'dist/console/index.html', 'LICENSE', 'README.md']),
  );
  expect(shipped).toContain('proto/runmesh/v1/job.proto');
  // Sources, tests, benches, source maps and the generated TypeScript stay out.
  expect(shipped.filter((p) => /\.ts$|\.map$|\.test\.|^dist\/(test|bench)\/|\/testing\/|^(test|bench|web|deploy|docs)\//.test(p))).toEqual(
    [],
  );
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'runmesh-install', private: true, dependencies: { runmesh: `file:${filename}` } }),
  );
  writeFileSync(join(dir, 'package-lock.json'), JSON.stringify(lockFor(filename)));
  await exec('npm', ['ci', '--offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, timeout: NPM_TIMEOUT_MS });
  bin = join(dir, 'node_modules', '.bin', 'runmesh');
  // The installed CLI keeps its context (runmesh dev's admin token) here, not in the user's config.
  env = { ...process.env, XDG_CONFIG_HOME: join(dir, 'config') };
  for (const name of ['RUNMESH_CONFIG', 'RUNMESH_TOKEN', 'RUNMESH_SERVER']) delete env[name];
}, 4 * NPM_TIMEOUT_MS);

afterAll(() => {
  for (const p of started) p.kill('SIGKILL');
});

describe('the npm package', () => {
  it('installs a working runmesh: version, help, and runmesh dev running a job', async () => {
    const installed = join(dir, 'node_modules', 'runmesh');
    expect(readdirSync(installed).filter((f) => f !== 'node_modules')).toEqual([
      'LICENSE',
      'README.md',
      'bin',
      'dist',
      'package.json',
      'proto',
    ]);
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    expect((await exec(bin, ['--version'], { env })).stdout.trim()).toBe(version);
    const help = (await exec(bin, ['--help'], { env })).stdout;
    for (const command of ['submit', 'jobs', 'server', 'agent', 'dev']) expect(help).toMatch(new RegExp(`^\\s+${command}\\b`, 'm'));

    const dev = spawn(
      bin,
      ['dev', '--agents', '1', '--listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0', '--data-dir', join(dir, 'data')],
      {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    started.push(dev);
    let out = '';
    dev.stdout.on('data', (d: Buffer) => (out += d.toString()));
    dev.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const address = await waitUntil(() => /control plane on (\S+) /.exec(out)?.[1] ?? (dev.exitCode !== null && 'exited'), {
      what: 'runmesh dev to start',
      timeoutMs: 45_000,
      show: () => out,
    });
    expect(address).not.toBe('exited');
    const job = await exec(bin, ['submit', '--server', address, '--wait', '--', 'echo', 'hello from the package'], {
      env,
      timeout: 45_000,
    });
    expect(job.stdout).toContain('hello from the package');
    dev.kill('SIGTERM');
    await new Promise((resolve) => dev.once('exit', resolve));
    expect(out).toContain('runmesh dev: stopping');
  });
});
