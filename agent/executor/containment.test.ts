/**
 * Containment end to end, through the executor and its supervisor on this
 * host's real cgroups, bubblewrap and users: nothing a job starts outlives
 * its cancel or timeout, its limits hold, and what it may see is what it
 * should.
 */
import { createServer, type Server } from 'node:net';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AttemptCgroup } from './cgroup.js';
import type { AttemptHandle, AttemptLimits } from './executor.js';
import type { SpecFile } from './host.js';
import { collect, collectFirst, Fixture, text } from './testdata/fixture.js';
import { waitUntil } from '../../test/support/wait.js';

let fx: Fixture;
let server: Server | undefined;
afterEach(async () => {
  server?.close();
  server = undefined;
  await fx.cleanup();
});

const root = process.getuid?.() === 0;
const probe = new Fixture();
const contained = !probe.executor.describe().containment.startsWith('process group');
const sandboxed = probe.executor.describe().executors.includes('sandbox');
void probe.cleanup();

const NO_LIMITS: AttemptLimits = { memoryBytes: 0, cpuMillis: 0, cpuWeight: 0, pids: 0 };

/** Live processes whose environment carries `mark` (RUNMESH_TEST_MARK=...): every descendant of the job, however it detached. */
function marked(mark: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      if (readFileSync(`/proc/${name}/environ`, 'latin1').split('\0').includes(`RUNMESH_TEST_MARK=${mark}`)) out.push(Number(name));
    } catch {
      // gone meanwhile, or a kernel thread
    }
  }
  return out;
}

/** The marked processes that are `sleep` itself. */
function sleepers(mark: string): number[] {
  return marked(mark).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'latin1').trim() === 'sleep';
    } catch {
      return false;
    }
  });
}

function cgroupOf(h: AttemptHandle): AttemptCgroup | undefined {
  const spec = JSON.parse(readFileSync(join(h.dir, 'spec.json'), 'utf8')) as SpecFile;
  return AttemptCgroup.open(spec.host.cgroup, `${h.jobId}.${h.attempt}`);
}

/** A job that leaves its group and session every way it can, then waits. */
const DAEMONIZE =
  "setsid sh -c 'sleep 300 & sleep 300' & (sh -c 'sleep 300 &' &); (setsid sh -c 'setsid sleep 300 &' &); echo started; sleep 300";

describe.skipIf(!root || !contained)('a job in its cgroup (skipped: needs root and a writable cgroup)', () => {
  for (const how of ['cancel', 'timeout'] as const) {
    it(`that daemonized with setsid and double forks is completely gone after ${how}, per /proc and per its cgroup`, async () => {
      fx = new Fixture();
      const mark = `${how}-${process.pid}-${Date.now()}`;
      const deadline = how === 'timeout' ? Date.now() + 3000 : Date.now() + 120_000;
      const h = await fx.executor.start(fx.spec({ script: DAEMONIZE, env: { RUNMESH_TEST_MARK: mark }, deadline, graceSeconds: 1 }));
      await collectFirst(h, 1);
      // The five sleeps live on; the shells and subshells that forked them come and go, so only the sleeps are compared.
      await waitUntil(() => sleepers(mark).length === 5, { what: 'every sleep of the job to run', timeoutMs: 10_000 });
      const cg = cgroupOf(h)!;
      const pids = marked(mark);
      expect(cg.pids()).toEqual(expect.arrayContaining(sleepers(mark))); // escaped its group and session, not its cgroup
      if (how === 'cancel') await h.cancel(1, 'test');
      const status = await h.exited();
      expect(status.failure).toBe(how === 'cancel' ? 'cancelled' : 'timeout');
      expect(marked(mark)).toEqual([]);
      expect(pids.filter((p) => existsInProc(p))).toEqual([]);
      await waitUntil(() => cgroupOf(h) === undefined, { what: 'the emptied cgroup to be removed', timeoutMs: 5000 });
    });
  }

  it('over its memory limit is killed by the kernel and fails out of memory, with its peak', async () => {
    fx = new Fixture();
    const limit = 64 * 1024 * 1024;
    const hog = 'const a = []; for (let i = 0; i < 64; i++) a.push(Buffer.alloc(4 * 1024 * 1024, 1)); console.log("survived")';
    const h = await fx.executor.start(fx.spec({ argv: [process.execPath, '-e', hog], limits: { ...NO_LIMITS, memoryBytes: limit } }));
    const status = await h.exited();
    expect(status).toMatchObject({ failure: 'oom' });
    expect(status.message).toMatch(/^killed by the kernel at its memory limit of 64 MiB \(peak \d+ MiB\)$/);
    expect(status.usage!.peakMemoryBytes).toBeGreaterThan(limit * 0.75);
    expect(status.usage!.peakMemoryBytes).toBeLessThanOrEqual(limit);
  });

  it('that fork-bombs stays inside its pids limit, and the executor runs the next job as usual', async () => {
    fx = new Fixture();
    const mark = `bomb-${process.pid}-${Date.now()}`;
    const bomb = 'bomb() { bomb | bomb & }; bomb; echo lit; sleep 300';
    const h = await fx.executor.start(
      fx.spec({ script: bomb, env: { RUNMESH_TEST_MARK: mark }, limits: { ...NO_LIMITS, pids: 64 }, deadline: Date.now() + 60_000 }),
    );
    await collectFirst(h, 1);
    const cg = cgroupOf(h)!;
    let most = 0;
    // It forks up to its limit (however slowly a loaded machine lets it), and never past it.
    await waitUntil(
      () => {
        most = Math.max(most, cg.pids().length);
        return most > 32;
      },
      { what: 'the bomb to reach its limit', timeoutMs: 30_000, intervalMs: 20 },
    );
    for (let i = 0; i < 20; i++) {
      most = Math.max(most, cg.pids().length);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(most).toBeLessThanOrEqual(64);
    await h.cancel(0, 'defused');
    expect(await h.exited()).toMatchObject({ failure: 'cancelled' });
    expect(marked(mark)).toEqual([]);
    const next = await fx.executor.start(fx.spec({ script: 'echo fine' }));
    expect(text(await collect(next), 'stdout')).toBe('fine\n');
    expect(await next.exited()).toMatchObject({ failure: 'none' });
  });

  it('records its peak memory and CPU time', async () => {
    fx = new Fixture();
    // 300 ms of its own CPU, however long a loaded machine takes to give it that.
    const spin =
      'let x = 0; while (process.cpuUsage().user < 300_000) x++; const b = Buffer.alloc(32 * 1024 * 1024, 1); console.log(b.length)';
    const h = await fx.executor.start(fx.spec({ argv: [process.execPath, '-e', spin] }));
    const status = await h.exited();
    expect(status.failure).toBe('none');
    expect(status.usage!.cpuSeconds).toBeGreaterThan(0.15);
    expect(status.usage!.peakMemoryBytes).toBeGreaterThan(32 * 1024 * 1024);
  });

  it('refuses a program that does not exist as not runnable, though it runs behind the cgroup wrapper', async () => {
    fx = new Fixture();
    const h = await fx.executor.start(fx.spec({ argv: ['/nonexistent/tool', '--help'] }));
    expect(await h.exited()).toMatchObject({ failure: 'not_runnable', message: 'could not start /nonexistent/tool: not found' });
  });
});

describe.skipIf(!root || !sandboxed)('the sandbox executor (skipped: needs root and bubblewrap)', () => {
  it('runs a script in the workspace; nothing outside it, nor the agent credential, can be read', async () => {
    fx = new Fixture();
    writeFileSync(join(fx.workDir, 'credential'), 'rma_secret');
    const script = [
      'echo made > made.txt && cat made.txt',
      `cat ${join(fx.workDir, 'credential')} 2>/dev/null || echo credential-hidden`,
      `ls ${fx.workDir}`,
      'touch /usr/x 2>/dev/null || echo usr-read-only',
      'echo $$',
    ].join('\n');
    const h = await fx.executor.start(fx.spec({ script, executor: 'sandbox' }));
    const out = text(await collect(h), 'stdout').split('\n');
    expect(await h.exited()).toMatchObject({ failure: 'none' });
    expect(out.slice(0, 4)).toEqual(['made', 'credential-hidden', 'attempts', 'usr-read-only']);
    expect(Number(out[4])).toBeLessThan(10); // its own PID namespace
    expect(readFileSync(join(h.dir, 'work', 'made.txt'), 'utf8')).toBe('made\n');
  });

  it('reaches the network unless the job asks for none', async () => {
    fx = new Fixture();
    server = createServer((s) => s.end());
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const dial = `require('net').connect(${port}, '127.0.0.1').on('connect', () => { console.log('connected'); process.exit(0) }).on('error', (e) => { console.log(e.code); process.exit(3) })`;
    const run = async (network: boolean): Promise<string> => {
      const h = await fx.executor.start(fx.spec({ argv: [process.execPath, '-e', dial], executor: 'sandbox', network }));
      return text(await collect(h), 'stdout').trim();
    };
    expect(await run(true)).toBe('connected');
    expect(await run(false)).toMatch(/^(ENETUNREACH|ECONNREFUSED)$/);
  });
});

describe.skipIf(!root)('--job-user (skipped: needs root to switch users)', () => {
  it('runs jobs as that user, who can write the workspace but read neither the work dir nor the credential', async () => {
    fx = new Fixture();
    writeFileSync(join(fx.workDir, 'credential'), 'rma_secret', { mode: 0o600 });
    const as = fx.reopen({ jobUser: 'nobody' });
    const script = [
      'id -u',
      'echo mine > mine.txt && cat mine.txt',
      `ls ${fx.workDir} >/dev/null 2>&1 || echo work-dir-unlisted`,
      `cat ${join(fx.workDir, 'credential')} >/dev/null 2>&1 || echo credential-unreadable`,
      'cat ../spec.json >/dev/null 2>&1 || echo spec-unreadable',
    ].join('\n');
    const h = await as.start(fx.spec({ script }));
    expect(text(await collect(h), 'stdout').split('\n')).toEqual([
      '65534',
      'mine',
      'work-dir-unlisted',
      'credential-unreadable',
      'spec-unreadable',
      '',
    ]);
    expect(await h.exited()).toMatchObject({ failure: 'none' });
    expect(as.describe().containment).toContain('jobs run as nobody');
  });

  it('refuses an unknown user when the executor starts', () => {
    fx = new Fixture();
    expect(() => fx.reopen({ jobUser: 'no-such-user-runmesh' })).toThrow('--job-user: no such user: no-such-user-runmesh');
  });
});

describe('input the agent can run', () => {
  it('runs a 1 MB script (from a file: one argument could not carry it)', async () => {
    fx = new Fixture();
    const filler = `: ${'x'.repeat(998)}\n`.repeat(1024);
    const h = await fx.executor.start(fx.spec({ script: `echo start\n${filler}echo end\n` }));
    expect(text(await collect(h), 'stdout')).toBe('start\nend\n');
    expect(await h.exited()).toMatchObject({ failure: 'none' });
  });
});

function existsInProc(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

describe('workspace files', () => {
  it('are written before the job starts, 0600, in directories made for them; a path out of the workspace is refused', async () => {
    fx = new Fixture();
    const files = [
      { path: 'deploy.key', content: 'k1' },
      { path: 'conf/deep/token', content: 't2' },
    ];
    const h = await fx.executor.start(fx.spec({ script: 'cat deploy.key conf/deep/token; stat -c %a deploy.key', files }));
    expect(text(await collect(h), 'stdout')).toBe('k1t2600\n');
    const escape = await fx.executor
      .start(fx.spec({ script: 'true', files: [{ path: '../spec.json', content: 'x' }] }))
      .catch((e: unknown) => e);
    expect(String(escape)).toContain('files[0].path: "../spec.json" is not a plain path inside the workspace');
  });
});
