/**
 * Real runmesh processes for cross-process tests: `runmesh server` and
 * `runmesh agent` started from the built CLI, on port 0 and temp dirs, killed
 * on cleanup. Nothing here fakes our own code.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../../control-plane/paths.js';
import { waitUntil } from './wait.js';

/** The package root, from test/support (vitest) or dist/test/support (benchmarks). */
export const ROOT = repoRoot();
export const CLI = join(ROOT, 'bin', 'runmesh.js');

export interface Proc {
  readonly proc: ChildProcess;
  /** The runmesh command line, for reports. */
  readonly args: readonly string[];
  /** When stop() or kill9() was first called, if it was. */
  readonly stoppedAt: number | undefined;
  readonly output: () => string;
  /** Sends `signal` and waits for the exit (SIGKILL after `timeoutMs`). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
  kill9(): Promise<void>;
}

const all = new Set<Proc>();
/** The latest processes started, stopped or not, for failure reports. */
const recent: Proc[] = [];
const RECENT_MAX = 50;

/** `netns`: run it inside that network namespace (`ip netns exec`, which execs it: the pid is runmesh's). */
export function run(args: string[], env: Record<string, string> = {}, netns?: string): Proc {
  const command = netns ? ['ip', 'netns', 'exec', netns, process.execPath] : [process.execPath];
  const proc = spawn(command[0]!, [...command.slice(1), CLI, ...args], {
    cwd: ROOT,
    env: { ...process.env, RUNMESH_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (d: Buffer): void => {
    out += d.toString();
    if (out.length > 4_000_000) out = out.slice(-2_000_000);
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  let stoppedAt: number | undefined;
  const p: Proc = {
    proc,
    args,
    get stoppedAt() {
      return stoppedAt;
    },
    output: () => out,
    async stop(signal = 'SIGTERM', timeoutMs = 15_000) {
      stoppedAt ??= Date.now();
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
      const code = await exited;
      clearTimeout(t);
      all.delete(p);
      return code;
    },
    async kill9() {
      await p.stop('SIGKILL');
    },
  };
  all.add(p);
  recent.push(p);
  if (recent.length > RECENT_MAX) recent.shift();
  return p;
}

/** Waits for `pattern` in the process output; fails with the output if it exits or times out. */
export async function waitForOutput(p: Proc, pattern: RegExp, timeoutMs = 15_000): Promise<RegExpMatchArray> {
  const found = await waitUntil(() => p.output().match(pattern) ?? (p.proc.exitCode !== null && 'exited'), {
    what: `${pattern} in the output`,
    timeoutMs,
    intervalMs: 20,
    show: () => `output:\n${p.output().slice(-4000)}`,
  });
  if (found === 'exited') throw new Error(`waiting for ${pattern} failed: the process exited; output:\n${p.output().slice(-4000)}`);
  return found;
}

/** Directories made by `tempDir`, removed by `removeTempDirs` once their processes are gone. */
const made = new Set<string>();

/** A fresh directory under the temp dir, removed by `removeTempDirs` (the setup file calls it after each test file). */
export async function tempDir(prefix = 'runmesh-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  made.add(dir);
  return dir;
}

/**
 * Kills every process started here, then removes every `tempDir`. Data dirs
 * hold a store and logs (tens of MB each): left behind, a runner's temp dir
 * grew by hundreds of MB per suite run.
 */
export async function removeTempDirs(): Promise<void> {
  await stopAll();
  const dirs = [...made];
  made.clear();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
}

export interface ServerProc extends Proc {
  address: string;
  http: string;
  dataDir: string;
}

export const TOKEN = 'test-join-token';

/** `env`: more environment for the process (OTEL_* in the tracing test). */
export async function startServer(
  o: { dataDir?: string; args?: string[]; listen?: string; env?: Record<string, string> } = {},
): Promise<ServerProc> {
  const dataDir = o.dataDir ?? (await tempDir('runmesh-cp-'));
  const p = run(
    [
      'server',
      '--listen',
      o.listen ?? '127.0.0.1:0',
      '--http-listen',
      '127.0.0.1:0',
      '--data-dir',
      dataDir,
      '--join-token',
      TOKEN,
      '--heartbeat-timeout',
      '2s',
      ...(o.args ?? []),
    ],
    o.env,
  );
  // Bounded, but with room for a runner busy with another suite's processes (seen: over 15 s).
  const m = await waitForOutput(p, /runmesh server: gRPC ([^,\s]+).*, http (\S+)/, 45_000);
  return Object.assign(p, { address: m[1] ?? '', http: m[2] ?? '', dataDir });
}

export interface AgentProc extends Proc {
  name: string;
  workDir: string;
}

export async function startAgent(
  server: string,
  o: { name: string; workDir?: string; slots?: number; labels?: string; args?: string[]; netns?: string; env?: Record<string, string> },
): Promise<AgentProc> {
  const workDir = o.workDir ?? (await tempDir(`runmesh-agent-${o.name}-`));
  const args = [
    'agent',
    '--server',
    server,
    '--join-token',
    TOKEN,
    '--name',
    o.name,
    '--slots',
    String(o.slots ?? 2),
    '--work-dir',
    workDir,
    '--shutdown-grace',
    '5s',
  ];
  if (o.labels) args.push('--labels', o.labels);
  const p = run([...args, ...(o.args ?? [])], o.env, o.netns);
  return Object.assign(p, { name: o.name, workDir });
}

/** The processes (of the latest few started) that were still running at `since`. */
export function procsAliveSince(since: number): Proc[] {
  return recent.filter((p) => p.stoppedAt === undefined || p.stoppedAt >= since);
}

/** Kills every process these helpers started (afterAll/afterEach). */
export async function stopAll(): Promise<void> {
  await Promise.all([...all].map((p) => p.stop('SIGKILL')));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
