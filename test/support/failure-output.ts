/**
 * Setup file: when a test fails, print the end of the output of every runmesh
 * process that was running during it (servers, agents), even if an afterEach
 * has stopped them since. A CI failure then shows what the processes said,
 * not only what the test saw. After each test file, removes the temp dirs
 * its processes used (see removeTempDirs).
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach } from 'vitest';
import { procsAliveSince, removeTempDirs } from './processes.js';

// The CLI's per-user config file: a test's own, never the user's (runmesh dev writes a context into it).
process.env.RUNMESH_CONFIG = join(tmpdir(), `runmesh-test-config-${process.pid}.json`);

const TAIL_CHARS = 6_000;
let testStart = 0;

beforeEach(() => {
  testStart = Date.now();
});

afterEach((ctx) => {
  if (ctx.task.result?.state !== 'fail') return;
  for (const p of procsAliveSince(testStart)) {
    const role = p.args[0] ?? '?';
    const named = p.args.indexOf('--name');
    const label = named >= 0 ? `${role} ${p.args[named + 1]}` : role;
    const state = p.proc.exitCode !== null || p.proc.signalCode !== null ? `exited ${p.proc.exitCode ?? p.proc.signalCode}` : 'running';
    const out = p.output();
    process.stderr.write(
      `\n--- ${label} (pid ${p.proc.pid}, ${state}): last ${Math.min(out.length, TAIL_CHARS)} of ${out.length} chars ---\n${out.slice(-TAIL_CHARS)}\n`,
    );
  }
});

// Registered first, so it runs after the file's own afterAll hooks have stopped what they started.
afterAll(async () => {
  await removeTempDirs();
});
