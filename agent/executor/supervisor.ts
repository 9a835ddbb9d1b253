/**
 * The supervisor: a small process, detached from the agent, that runs one
 * attempt. It spawns the job in its own process group, appends its output to
 * the spool, enforces the deadline, honours cancel requests (SIGUSR2 plus
 * cancel.json, so any later agent process can ask), kills whatever is left of
 * the group when the job ends, and writes status.json last. Because it
 * outlives the agent, a killed or upgraded agent loses nothing.
 *
 * Usage: node supervisor.js <attemptDir>
 *        node supervisor.js --standby <token>
 *
 * A standby is started before there is an attempt for it, so that Node's
 * start-up (~0.1 s of CPU here) is not on the path from Assign to a running job:
 * it boots, then waits for the agent to write an attempt dir on its stdin and
 * close it. End of input without one (the agent closed or died) and it
 * leaves. Its token, the path of the log file it was started on, is moved
 * into the attempt as supervisor.log and recorded there as supervisor.standby.
 *
 * pino is imported neither at start-up nor on the first line logged: its
 * import is a third of Node's start-up here (~45 ms of ~130), which a cold
 * start would wait for and a standby's boot (the next job's readiness) would
 * pay. Lines wait (in order) until the job has run for LOG_IMPORT_AFTER_MS,
 * or its status is written, or we fail. Importing right after the spawn, as
 * this once did, put those 45 ms of busy main thread between a short job's
 * exit and its status: 56-70 ms from a `date` job's run to the agent seeing
 * it exit, against 11-24 ms now.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync } from 'node:fs';
import { constants } from 'node:os';
import type { Logger } from 'pino';
import type { AttemptSpec, ExitFailure, ExitStatus } from './executor.js';
import { files, writeFileAtomicSync, type CancelRequest } from './files.js';
import { SpoolWriter } from './spool-writer.js';

/** After the main process exits, how long leftovers of its group get between SIGTERM and SIGKILL. */
const LEFTOVER_GRACE_MS = 2000;
/** Beyond that, how long pipes held by processes that escaped the group may stay open. */
const PIPE_DRAIN_MS = 3000;
/** setTimeout's ceiling; a later deadline re-arms. */
const MAX_TIMER_MS = 2_147_483_647;
const BASE_ENV = ['PATH', 'HOME', 'LANG', 'TMPDIR'] as const;
/** How long the job runs before we import pino for the lines waiting to be logged. */
const LOG_IMPORT_AFTER_MS = 150;
const DEFAULT_PATH = '/usr/local/bin:/usr/bin:/bin';

type Outcome = Pick<ExitStatus, 'exitCode' | 'failure' | 'message'>;
interface MainExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

const dir = process.argv[2] === '--standby' ? await standbyFor(process.argv[3]) : process.argv[2];
if (!dir) {
  process.stderr.write('usage: supervisor.js <attemptDir> | --standby <token>\n');
  process.exit(2);
}
const f = files(dir);

// Handlers first: a cancel may arrive while we boot. `ready` then tells the
// executor it may signal; a cancel.json written before that is seen once the job runs.
let pgid = 0;
let cancelPending = false;
let ending: ExitFailure | undefined;
let mainExited = false;
let killTimer: NodeJS.Timeout | undefined;
process.on('SIGUSR2', onCancel);
process.on('SIGTERM', onCancel);
process.on('SIGINT', onCancel);
process.on('SIGHUP', () => undefined); // the agent's terminal going away is not our business
writeFileAtomicSync(f.supervisorPid, String(process.pid));
writeFileAtomicSync(f.ready, String(process.pid));

const spec = JSON.parse(readFileSync(f.spec, 'utf8')) as AttemptSpec;
let logger: Promise<Logger | undefined> | undefined;
/** The time of the line being written (pino's timestamp reads it). */
let lineTime = 0;
let allowLogging!: () => void;
const loggingAllowed = new Promise<void>((resolve) => (allowLogging = resolve));
const spool = new SpoolWriter(f.spool);
const startedAt = Date.now();

main().catch((err: unknown) => {
  // Without a status the executor reports the attempt lost; the job must not outlive us unseen.
  signalGroup('SIGKILL');
  allowLogging();
  void log('error', { err }, 'supervisor failed').finally(() => process.exit(1));
});

/**
 * Logs to our stderr (supervisor.log) in call order, each line with the time
 * it was logged at; pino is imported once logging is allowed (see the top).
 * If that import fails (the install was replaced under a running job), the
 * lines are dropped, said once: the job and its status do not depend on them.
 */
function log(level: 'info' | 'warn' | 'error', fields: object, msg: string): Promise<void> {
  const at = Date.now();
  logger ??= loggingAllowed.then(() => import('pino')).then(
    ({ pino }) =>
      pino({ base: { job_id: spec.jobId, attempt: spec.attempt, pid: process.pid }, timestamp: () => `,"time":${lineTime}` }, pino.destination({ fd: 2, sync: true })),
    (err: unknown) => void process.stderr.write(`supervisor: cannot load pino, log lines dropped: ${String(err)}\n`),
  );
  return logger.then((l) => {
    lineTime = at;
    l?.[level](fields, msg);
  });
}

/** Waits for the agent to hand over an attempt dir (stdin, then end of input); leaves if none comes. */
async function standbyFor(token: string | undefined): Promise<string> {
  if (!token) return '';
  let input = '';
  for await (const chunk of process.stdin) input += String(chunk);
  const given = input.trim();
  if (!given) {
    try {
      unlinkSync(token);
    } catch {
      // already gone
    }
    process.exit(0);
  }
  process.chdir(given); // never pin the directory we were started in
  try {
    renameSync(token, files(given).supervisorLog); // our stdout and stderr go with the file
  } catch {
    // the log stays where it was; the attempt runs all the same
  }
  return given;
}

async function main(): Promise<void> {
  mkdirSync(f.work, { recursive: true });
  const [program, ...args] = spec.argv.length > 0 ? spec.argv : ['sh', '-e', '-c', spec.script];
  const child = spawn(program ?? '', args, { cwd: f.work, env: jobEnv(), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const exit = new Promise<MainExit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const drained = spoolPipes(child);
  const failed = await spawned(child);
  if (failed) return finish({ exitCode: 127, failure: 'could_not_start', message: `could not start ${program}: ${failed.message}` });
  pgid = child.pid ?? 0;
  writeFileAtomicSync(f.jobPgid, String(pgid));
  setTimeout(allowLogging, LOG_IMPORT_AFTER_MS);
  void log('info', { pgid }, 'job started');
  armDeadline();
  if (cancelPending || existsSync(f.cancel)) onCancel();
  const ended = await exit;
  mainExited = true;
  reapLeftovers(child);
  await drained;
  clearTimeout(killTimer);
  finish(outcome(ended));
}

function jobEnv(): Record<string, string> {
  const env: Record<string, string> = { PATH: DEFAULT_PATH };
  for (const k of BASE_ENV) {
    const v = process.env[k];
    if (v !== undefined) env[k] = v;
  }
  return { ...env, ...spec.env, RUNMESH_JOB_ID: spec.jobId, RUNMESH_ATTEMPT: String(spec.attempt), RUNMESH_WORKSPACE: f.work };
}

/** Resolves with the spawn error (ENOENT, EACCES...), or undefined once the job runs. */
function spawned(child: ChildProcess): Promise<Error | undefined> {
  return new Promise((resolve) => {
    child.once('spawn', () => resolve(undefined));
    child.once('error', resolve);
    child.on('error', (err) => void log('warn', { err }, 'job process error'));
  });
}

/** Every pipe read becomes a record, in arrival order; resolves when both pipes are closed. */
function spoolPipes(child: ChildProcess): Promise<void> {
  const closed = [child.stdout, child.stderr].map((pipe, i) => {
    const stream = i === 0 ? 'stdout' : 'stderr';
    return new Promise<void>((resolve) => {
      if (!pipe) return resolve();
      pipe.on('data', (d: Buffer) => spool.append(stream, d));
      pipe.on('error', () => undefined); // a destroyed pipe: what was read is already spooled
      pipe.on('close', resolve);
    });
  });
  return Promise.all(closed).then(() => undefined);
}

/** Leftovers of the group (background children) are part of the job: they go too, and their pipes with them. */
function reapLeftovers(child: ChildProcess): void {
  signalGroup('SIGTERM');
  setTimeout(() => signalGroup('SIGKILL'), LEFTOVER_GRACE_MS).unref();
  setTimeout(() => {
    // Only a process that left the group (setsid) can still hold them now.
    void log('warn', {}, 'pipes still open after the group was killed; closing them');
    child.stdout?.destroy();
    child.stderr?.destroy();
  }, LEFTOVER_GRACE_MS + PIPE_DRAIN_MS).unref();
}

function armDeadline(): void {
  if (!(spec.deadline > 0)) return;
  const left = spec.deadline - Date.now();
  if (left <= 0) return stop('timeout', spec.graceSeconds * 1000);
  setTimeout(armDeadline, Math.min(left, MAX_TIMER_MS)).unref();
}

function onCancel(): void {
  if (pgid === 0) {
    cancelPending = true;
    return;
  }
  stop('cancelled', (cancelRequest()?.grace ?? spec.graceSeconds) * 1000);
}

/** SIGTERM to the group now, SIGKILL after `graceMs`; the first reason to stop wins. */
function stop(why: ExitFailure, graceMs: number): void {
  if (ending || mainExited || pgid === 0) return;
  ending = why;
  void log('info', { why, grace_ms: graceMs }, 'stopping job');
  signalGroup('SIGTERM');
  killTimer = setTimeout(() => signalGroup('SIGKILL'), Math.max(0, graceMs));
}

function signalGroup(sig: NodeJS.Signals): void {
  if (pgid === 0) return;
  try {
    process.kill(-pgid, sig);
  } catch {
    // the group is already gone
  }
}

function cancelRequest(): CancelRequest | undefined {
  try {
    return JSON.parse(readFileSync(f.cancel, 'utf8')) as CancelRequest;
  } catch {
    return undefined;
  }
}

/** A signal death reads as 128 + signal number, the way a shell reports it. */
function outcome({ code, signal }: MainExit): Outcome {
  const exitCode = code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0);
  if (ending === 'timeout') return { exitCode, failure: 'timeout', message: `deadline passed after ${Math.round((Date.now() - startedAt) / 1000)}s` };
  if (ending === 'cancelled') return { exitCode, failure: 'cancelled', message: `cancelled: ${cancelRequest()?.reason ?? 'on request'}` };
  if (exitCode === 0) return { exitCode, failure: 'none', message: '' };
  return { exitCode, failure: 'exit_code', message: signal ? `killed by ${signal}` : `exited with code ${exitCode}` };
}

/** The spool is durable before the status that counts its records; the status is the last thing we write. */
function finish(o: Outcome): void {
  spool.seal();
  const status: ExitStatus = { ...o, startedAt, finishedAt: Date.now(), records: spool.records };
  writeFileAtomicSync(f.status, JSON.stringify(status), true);
  const d = openSync(dir!, 'r');
  fsyncSync(d); // the rename itself
  closeSync(d);
  allowLogging();
  void log('info', { exit_code: o.exitCode, failure: o.failure, records: status.records }, 'job finished').finally(() => process.exit(0));
}
