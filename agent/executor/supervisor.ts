/**
 * The supervisor: a small process, detached from the agent, that runs one
 * attempt. It spawns the job in its own process group, appends its output to
 * the spool, enforces the deadline, honours cancel requests (SIGUSR2 plus
 * cancel.json, so any later agent process can ask), kills whatever is left of
 * the group when the job ends, and writes status.json last. Because it
 * outlives the agent, a killed or upgraded agent loses nothing.
 *
 * Usage: node supervisor.js <attemptDir>
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeFileSync, writeSync, mkdirSync } from 'node:fs';
import { constants } from 'node:os';
import { encodeFrame } from '../../proto/log-frame.js';
import type { AttemptSpec, ExitFailure, ExitStatus } from './executor.js';
import { files, STREAM_CODES } from './files.js';

const MAX_RECORD = 64 * 1024;
/** After the main process exits, how long leftovers of its group get before SIGKILL. */
const LEFTOVER_GRACE_MS = 2000;
/** How long to wait for pipes held open by killed leftovers. */
const PIPE_DRAIN_MS = 3000;

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: supervisor.js <attemptDir>\n');
  process.exit(2);
}
const f = files(dir);
const spec = JSON.parse(readFileSync(f.spec, 'utf8')) as AttemptSpec;
const spool = openSync(f.spool, 'a');
let records = 0;
let ending: ExitFailure | undefined;
let killTimer: NodeJS.Timeout | undefined;
const startedAt = Date.now();

function append(stream: 'stdout' | 'stderr', chunk: Buffer): void {
  for (let at = 0; at < chunk.length; at += MAX_RECORD) {
    const frame = encodeFrame(STREAM_CODES[stream], chunk.subarray(at, at + MAX_RECORD));
    writeSync(spool, frame);
    records++;
  }
}

function writeStatus(s: Omit<ExitStatus, 'records' | 'startedAt' | 'finishedAt'>): void {
  fsyncSync(spool);
  closeSync(spool);
  const status: ExitStatus = { ...s, records, startedAt, finishedAt: Date.now() };
  writeFileSync(`${f.status}.tmp`, JSON.stringify(status));
  const fd = openSync(`${f.status}.tmp`, 'r');
  fsyncSync(fd);
  closeSync(fd);
  renameSync(`${f.status}.tmp`, f.status);
}

function signalGroup(pgid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pgid, sig);
  } catch {
    // the group is already gone
  }
}

/** SIGTERM to the group now, SIGKILL after `graceMs`; the first reason to stop wins. */
function stop(child: ChildProcess, why: ExitFailure, graceMs: number): void {
  if (ending || !child.pid) return;
  ending = why;
  signalGroup(child.pid, 'SIGTERM');
  killTimer = setTimeout(() => signalGroup(child.pid!, 'SIGKILL'), Math.max(0, graceMs));
}

function jobEnv(): Record<string, string> {
  const base: Record<string, string> = {};
  for (const k of ['PATH', 'HOME', 'LANG', 'TMPDIR', 'USER', 'LOGNAME', 'SHELL', 'TZ']) {
    const v = process.env[k];
    if (v !== undefined) base[k] = v;
  }
  return { ...base, ...spec.env, RUNMESH_JOB_ID: spec.jobId, RUNMESH_ATTEMPT: String(spec.attempt), RUNMESH_WORKSPACE: f.work };
}

function run(): void {
  mkdirSync(f.work, { recursive: true });
  const [program, ...args] = spec.argv.length > 0 ? spec.argv : ['sh', '-e', '-c', spec.script];
  const child = spawn(program!, args, { cwd: f.work, env: jobEnv(), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let open = 2;
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const finish = (): void => {
    if (!exit || open > 0) return;
    clearTimeout(killTimer);
    const exitCode = exit.code ?? 128 + (exit.signal ? (constants.signals[exit.signal] ?? 0) : 0);
    const failure: ExitFailure = ending ?? (exitCode === 0 ? 'none' : 'exit_code');
    const message = ending === 'timeout' ? `timed out after ${Math.round((spec.deadline - startedAt) / 1000)}s` : ending === 'cancelled' ? cancelReason() : '';
    writeStatus({ exitCode, failure, message });
    process.exit(0);
  };
  child.on('error', (err) => {
    writeStatus({ exitCode: 127, failure: 'could_not_start', message: `could not start ${program}: ${err.message}` });
    process.exit(0);
  });
  if (!child.pid) return;
  writeFileSync(f.jobPgid, String(child.pid));
  for (const stream of ['stdout', 'stderr'] as const) {
    const pipe = child[stream]!;
    pipe.on('data', (d: Buffer) => append(stream, d));
    pipe.on('close', () => {
      open--;
      finish();
    });
  }
  child.on('exit', (code, signal) => {
    exit = { code, signal };
    // Leftovers of the group (background children) are part of the job: they go too.
    signalGroup(child.pid!, 'SIGTERM');
    setTimeout(() => signalGroup(child.pid!, 'SIGKILL'), LEFTOVER_GRACE_MS).unref();
    setTimeout(() => {
      child.stdout?.destroy();
      child.stderr?.destroy();
    }, LEFTOVER_GRACE_MS + PIPE_DRAIN_MS).unref();
    finish();
  });
  const untilDeadline = Math.min(Math.max(0, spec.deadline - Date.now()), 2_147_483_647);
  setTimeout(() => stop(child, 'timeout', spec.graceSeconds * 1000), untilDeadline).unref();
  onCancel = () => stop(child, 'cancelled', cancelGraceMs());
  if (cancelRequested || existsSync(f.cancel)) onCancel();
}

// Handlers first: a cancel may arrive while we boot. Then `ready` tells the
// executor it may signal; a cancel.json written before that is picked up in run().
let cancelRequested = false;
let onCancel = (): void => {
  cancelRequested = true;
};
process.on('SIGUSR2', () => onCancel());
process.on('SIGTERM', () => onCancel());
process.on('SIGINT', () => onCancel());
process.on('SIGHUP', () => undefined); // the agent's terminal going away is not our business
writeFileSync(f.ready, String(process.pid));

function cancelRequest(): { grace?: number; reason?: string } {
  try {
    return JSON.parse(readFileSync(f.cancel, 'utf8')) as { grace?: number; reason?: string };
  } catch {
    return {};
  }
}

const cancelGraceMs = (): number => (cancelRequest().grace ?? spec.graceSeconds) * 1000;
const cancelReason = (): string => cancelRequest().reason ?? 'cancelled';

run();
