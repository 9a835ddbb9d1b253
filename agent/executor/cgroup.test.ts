/**
 * Attempt cgroups on real cgroups of this host: the setup detectCgroups picks
 * (v1 on a hybrid host, v2 on a pure one) and v2 forced onto the host's v2
 * mount (no controllers there on a hybrid host, but membership, kill and
 * remove work). Needs root; every cgroup and process made is removed after.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sleep, waitUntil } from '../../test/support/wait.js';
import {
  AttemptCgroup,
  CgroupError,
  describeCgroups,
  detectCgroups,
  findCgroupMounts,
  limitWrites,
  WRAP_FAILED_EXIT,
  type CgroupSetup,
} from './cgroup.js';
import type { AttemptLimits } from './executor.js';
import { alive, pidsWithArg } from './testdata/proc.js';

const root = process.getuid?.() === 0;
/** Appended to the name of a test that needs root, so a skip says why. */
const ROOT = root ? '' : ' (skipped: needs root for cgroups)';
const NO_LIMITS: AttemptLimits = { memoryBytes: 0, cpuMillis: 0, cpuWeight: 0, pids: 0 };
const MiB = 1 << 20;
const name = `cgtest-${process.pid}`;
const v2Mount = findCgroupMounts(readFileSync('/proc/self/mountinfo', 'utf8')).v2;

const detected: CgroupSetup = root ? detectCgroups({ name }) : { mode: 'none', reason: 'not root' };
const forcedV2: CgroupSetup = root && v2Mount ? detectCgroups({ name, mounts: { v2: v2Mount } }) : { mode: 'none', reason: 'no v2 mount' };
const has = (s: CgroupSetup, c: string): boolean => s.mode !== 'none' && s.controllers.includes(c);

const made: AttemptCgroup[] = [];
const children: ChildProcess[] = [];
let seq = 0;

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  const failures: unknown[] = [];
  for (const cg of made) {
    try {
      await cg.kill();
      cg.remove();
    } catch (err) {
      failures.push(err);
    }
  }
  for (const s of [detected, forcedV2]) for (const base of bases(s)) removeBase(base);
  if (failures.length) throw failures[0];
});

/** A fresh attempt cgroup, removed after the file. */
function attempt(setup: CgroupSetup, limits: AttemptLimits = NO_LIMITS): AttemptCgroup {
  const cg = AttemptCgroup.create(setup, `job${seq++}.1`, limits);
  made.push(cg);
  return cg;
}

/** Runs `argv` inside `cg` through wrap(); resolves with how it ended and its stdout and stderr. */
function run(
  cg: AttemptCgroup,
  argv: string[],
): { child: ChildProcess; ended: Promise<{ code: number | null; signal: string | null; out: string; err: string }> } {
  const [file, ...args] = cg.wrap(argv);
  const child = spawn(file!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
  const ended = new Promise<{ code: number | null; signal: string | null; out: string; err: string }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, out, err })),
  );
  return { child, ended };
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

/** Session id and parent pid of a live process, from /proc/<pid>/stat. */
function stat(pid: number): { ppid: number; sid: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), sid: Number(f[3]) };
  } catch {
    return undefined;
  }
}

describe.each([
  ['detected', detected],
  ['v2 forced onto the v2 mount', forcedV2],
])('an attempt cgroup (%s)', (_, setup) => {
  it.skipIf(!root || setup.mode === 'none')(`holds a job that daemonizes, and kill() leaves nothing of it${ROOT}`, async () => {
    const cg = attempt(setup);
    const marker = `300.${process.pid}${seq}`; // an argument of every sleep, to find them in /proc without the cgroup
    const job = `setsid sh -c "(sleep ${marker} &); sleep ${marker}" & sleep ${marker}`;
    const { child } = run(cg, ['/bin/sh', '-c', job]);
    const mySid = stat(process.pid)!.sid;
    // The daemon: its own session, and its parent (the subshell) gone, so the kernel reparented it.
    const daemonized = (): boolean => pidsWithArg(marker).some((p) => stat(p)?.sid !== mySid && !cg.pids().includes(stat(p)?.ppid ?? 0));
    await waitUntil(() => pidsWithArg(marker).length === 3 && daemonized(), {
      what: 'three sleeps, one daemonized',
      show: () => cg.pids(),
    });
    const marked = pidsWithArg(marker);
    const inside = cg.pids();
    expect(inside).toEqual(expect.arrayContaining([child.pid!, ...marked])); // every process of the job is in it
    expect(inside.filter((p) => !cmdline(p).includes(marker))).toEqual([]); // and nothing else is
    expect(cg.populated()).toBe(true);

    const other = AttemptCgroup.open(JSON.parse(JSON.stringify(setup)) as CgroupSetup, cg.key); // as another process would
    expect(other?.pids()).toEqual(inside);
    expect(cg.signal('SIGCONT')).toBe(inside.length);

    await other!.kill();
    expect(cg.populated()).toBe(false);
    expect(cg.pids()).toEqual([]);
    expect(inside.filter(alive)).toEqual([]);
    expect(pidsWithArg(marker)).toEqual([]);
    cg.remove();
    cg.remove(); // idempotent
    expect(AttemptCgroup.open(setup, cg.key)).toBeUndefined();
  });

  it.skipIf(!root || setup.mode === 'none')(
    `wrap() exits ${WRAP_FAILED_EXIT} naming the cgroup when it was removed in between${ROOT}`,
    async () => {
      const cg = attempt(setup);
      cg.remove();
      const { ended } = run(cg, ['/bin/echo', 'must not run']);
      const r = await ended;
      expect(r.code).toBe(WRAP_FAILED_EXIT);
      expect(r.out).toBe('');
      expect(r.err).toContain(`runmesh: cannot move the job into its cgroup (`);
      expect(r.err).toContain(cg.key);
    },
  );
});

describe('limits of the detected setup', () => {
  it.skipIf(!has(detected, 'memory'))(`a job over its memory limit is OOM-killed, its peak near the limit${ROOT}`, async () => {
    const limit = 64 * MiB;
    const cg = attempt(detected, { ...NO_LIMITS, memoryBytes: limit });
    const fill = 'const a = []; for (let i = 0; i < 256; i++) a.push(Buffer.alloc(1 << 20, 1)); console.log("survived")';
    const r = await run(cg, [process.execPath, '-e', fill]).ended;
    expect(r).toMatchObject({ signal: 'SIGKILL', out: '' });
    expect(cg.oomKills()).toBeGreaterThan(0);
    const peak = cg.usage().peakMemoryBytes;
    expect(peak).toBeLessThanOrEqual(limit);
    expect(peak).toBeGreaterThan(limit * 0.75);
  });

  it.skipIf(!has(detected, 'pids'))(`a pids limit of 32 holds a job forking 200 processes${ROOT}`, async () => {
    const cg = attempt(detected, { ...NO_LIMITS, pids: 32 });
    // Node, because a shell exits at its first failed fork; Node's own threads count against the limit too.
    const bomb =
      'const { spawn } = require("child_process"); let ok = 0, failed = 0;' +
      'for (let i = 0; i < 200; i++) { try { const c = spawn("sleep", ["30"], { stdio: "ignore" }); c.on("error", () => {}); c.unref();' +
      ' if (c.pid) ok++; else failed++; } catch { failed++; } }' +
      'console.log(JSON.stringify({ ok, failed })); setTimeout(() => {}, 500);';
    const { ended } = run(cg, [process.execPath, '-e', bomb]);
    let most = 0;
    let done = false;
    void ended.then(() => (done = true));
    for (const until = Date.now() + 20_000; !done && Date.now() < until; await sleep(5)) most = Math.max(most, cg.pids().length);
    const r = await ended;
    const counts = JSON.parse(r.out) as { ok: number; failed: number };
    expect(counts.ok).toBeGreaterThan(0);
    expect(counts.ok).toBeLessThan(32);
    expect(counts.failed).toBe(200 - counts.ok);
    expect(most).toBeGreaterThan(1);
    expect(most).toBeLessThanOrEqual(32);
    expect(cg.pids().length).toBe(counts.ok); // the sleeps outlive the job, inside
    await cg.kill();
    expect(cg.populated()).toBe(false);
  });

  it.skipIf(!has(detected, 'cpu'))(`a cpu quota of 200 millis holds a busy loop to a fifth of a core${ROOT}`, async () => {
    const cg = attempt(detected, { ...NO_LIMITS, cpuMillis: 200, cpuWeight: 50 });
    // Busy for 1 s of wall time: a sleeper kills the loop.
    const r = await run(cg, ['/bin/sh', '-c', '(sleep 1; kill $$) & while :; do :; done']).ended;
    expect(r.signal).toBe('SIGTERM');
    const { cpuSeconds } = cg.usage();
    expect(cpuSeconds).toBeGreaterThan(0.05);
    expect(cpuSeconds).toBeLessThanOrEqual(0.3);
  });
});

describe('detectCgroups', () => {
  it('reads the mounts of a hybrid host and of a pure v2 host from mountinfo', () => {
    const hybrid = [
      '30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
      '31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct',
      '34 30 0:31 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory',
      '39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd',
      '40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
    ].join('\n');
    expect(findCgroupMounts(hybrid)).toEqual({
      v2: '/sys/fs/cgroup/unified',
      v1: { cpu: '/sys/fs/cgroup/cpu,cpuacct', cpuacct: '/sys/fs/cgroup/cpu,cpuacct', memory: '/sys/fs/cgroup/memory' },
    });
    const pure = '29 23 0:26 / /sys/fs/cgroup\\040x rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n';
    expect(findCgroupMounts(pure)).toEqual({ v2: '/sys/fs/cgroup x', v1: {} });
  });

  it('maps limits to the files of each version; 0 sets nothing', () => {
    const l: AttemptLimits = { memoryBytes: 64 * MiB, cpuMillis: 5, cpuWeight: 50, pids: 32 };
    const files = (mode: 'v1' | 'v2', limits: AttemptLimits): string[] => limitWrites(mode, limits).map((w) => `${w.file}=${w.value}`);
    expect(files('v2', l)).toEqual([
      `memory.max=${64 * MiB}`,
      'memory.swap.max=0',
      'memory.oom.group=1',
      'cpu.max=1000 100000', // clamped to the kernel's 1 ms minimum
      'cpu.weight=50',
      'pids.max=32',
    ]);
    expect(files('v1', { ...l, cpuMillis: 1500 })).toEqual([
      `memory.limit_in_bytes=${64 * MiB}`,
      `memory.memsw.limit_in_bytes=${64 * MiB}`,
      'cpu.cfs_period_us=100000',
      'cpu.cfs_quota_us=150000',
      'cpu.shares=512',
      'pids.max=32',
    ]);
    expect(files('v2', NO_LIMITS)).toEqual([]);
  });

  it('describes each mode in one line', () => {
    expect(describeCgroups({ mode: 'none', reason: 'no cgroup v2 mount' })).toBe('process group only: no cgroup v2 mount');
    expect(describeCgroups({ mode: 'v1', bases: {}, controllers: ['memory', 'pids'], path: '/runmesh/a' })).toBe(
      'cgroup v1 (memory pids) under /runmesh/a',
    );
    expect(describeCgroups({ mode: 'v2', base: '/sys/fs/cgroup/x', controllers: [], note: 'why' })).toBe(
      'cgroup v2 (no controllers: limits not enforced) under /sys/fs/cgroup/x; why',
    );
  });

  it.skipIf(!root)(`picks v1 on a hybrid host, and v2 where the v2 mount is all there is${ROOT}`, () => {
    const v2Offers = v2Mount ? readFileSync(join(v2Mount, 'cgroup.controllers'), 'utf8') : '';
    if (!['cpu', 'memory', 'pids'].every((c) => v2Offers.includes(c))) expect(detected.mode).toBe('v1');
    expect(describeCgroups(detected)).toContain(name);
    expect(forcedV2).toMatchObject({ mode: 'v2', base: join(v2Mount ?? '', 'runmesh.slice', name) });
  });

  it('returns none with the reason for a dir that is not a cgroup, never throwing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cgtest-'));
    try {
      const s = detectCgroups({ name, mounts: { v2: dir, v1: { memory: dir } } });
      expect(s).toEqual({
        mode: 'none',
        reason: `${dir} is not a cgroup v2 hierarchy; cgroup v1 (memory): ${dir} is not a cgroup v1 hierarchy`,
      });
      expect(describeCgroups(s)).toMatch(/^process group only: /);
      expect(() => AttemptCgroup.create(s, 'job.1', NO_LIMITS)).toThrow(CgroupError);
      expect(AttemptCgroup.open(s, 'job.1')).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it.skipIf(!root || !v2Mount)(`returns none naming the parent it cannot create under${ROOT}`, () => {
    const parent = `cgtest-${process.pid}-full`;
    const dir = join(v2Mount!, parent);
    mkdirSync(dir);
    try {
      writeFileSync(join(dir, 'cgroup.max.depth'), '0'); // the kernel refuses any child
      const s = detectCgroups({ name, parent, mounts: { v2: v2Mount } });
      expect(s.mode).toBe('none');
      expect(s.mode === 'none' && s.reason).toContain(`cannot create ${join(dir, name)}`);
    } finally {
      rmdirSync(dir);
    }
  });
});

function bases(s: CgroupSetup): string[] {
  if (s.mode === 'v2') return [s.base];
  return s.mode === 'v1' ? [...new Set(Object.values(s.bases))] : [];
}

/** rmdir the test's base, then its parent if no one else uses it. */
function removeBase(base: string): void {
  for (const dir of [base, dirname(base)]) {
    try {
      rmdirSync(dir);
    } catch {
      return; // in use by another test file or an agent: theirs to remove
    }
  }
}
