/**
 * The supervisor: a small process, detached from the agent, that runs
 * attempts. For each it spawns the job in its own process group, appends its
 * output to the spool, enforces the deadline, honours cancel requests
 * (cancel.json plus SIGUSR2, so any later agent process can ask), kills
 * whatever is left of the group when the job ends, and writes status.json
 * last. Because it outlives the agent, a killed or upgraded agent loses
 * nothing.
 *
 * Usage: node supervisor.js <attemptDir>          one attempt, then exit
 *        node supervisor.js --standby <token>     attempts named on stdin
 *
 * The agent keeps one long-lived supervisor (a standby) and hands it every
 * attempt: it reads attempt dirs from stdin, one per line, and runs each at
 * once, side by side with the others, so a job costs a spawn and a few file
 * writes instead of a Node process (a supervisor per attempt cost ~60 ms of
 * CPU to boot and ~8 MB while it lived; see docs/architecture.md). It is
 * started before there is an attempt for it, so that Node's start-up
 * (0.12-0.15 s here) is not on the path from Assign to a running job. End of
 * input (the agent retired it, closed, or died) and it leaves once its last
 * attempt is done. Its token, the path of the log file it was started on
 * (its stdout and stderr, in the attempts root), is recorded in every attempt
 * it runs as supervisor.standby (its command line lacks the dir).
 *
 * pino is imported neither at start-up nor on the first line logged: its
 * import is a third of Node's start-up here (~45 ms of ~130), which a cold
 * start would wait for and a standby's boot (the next job's readiness) would
 * pay. Lines wait (in order) until the job has run for LOG_IMPORT_AFTER_MS,
 * or its status is written, or we fail. Importing right after the spawn, as
 * this once did, put those 45 ms of busy main thread between a short job's
 * exit and its status: 56-70 ms from a `date` job's run to the agent seeing
 * it exit, against 11-24 ms now. Each attempt's lines go to its own
 * supervisor.log; what Node itself prints on a crash goes to our stderr, the
 * first attempt's file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { constants } from 'node:os';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { isDiskFull } from '../../proto/disk-space.js';
import { Containment, PROGRESS_ENV, ProgramError } from './containment.js';
import type { ExitFailure, ExitStatus } from './executor.js';
import { DEFAULT_PIDS_LIMIT, type HostPlan, type SpecFile } from './host.js';
import { files, syncDir, writeFileAtomicSync, writeFileDurable, type AttemptFiles, type CancelRequest } from './files.js';
import { SpoolWriter } from './spool-writer.js';

/** After the main process exits, how long leftovers of its group get between SIGTERM and SIGKILL. */
const LEFTOVER_GRACE_MS = 2000;
/** How often we look whether leftovers are gone meanwhile. */
const LEFTOVER_POLL_MS = 50;
/** Beyond that, how long pipes held by processes that escaped the group may stay open. */
const PIPE_DRAIN_MS = 3000;
/** setTimeout's ceiling; a later deadline re-arms. */
const MAX_TIMER_MS = 2_147_483_647;
const BASE_ENV = ['PATH', 'HOME', 'LANG', 'TMPDIR'] as const;
/** How long the job runs before we import pino for the lines waiting to be logged. */
const LOG_IMPORT_AFTER_MS = 150;
/**
 * Why spawn fails because of the job itself (a missing or non-executable
 * program, arguments too long or unpassable), on any host alike; any other
 * spawn error (EAGAIN, ENOMEM, ENOSPC...) is the host's.
 */
const JOB_CAUSED = new Set([
  'ENOENT',
  'EACCES',
  'ENOTDIR',
  'ENOEXEC',
  'ELOOP',
  'ENAMETOOLONG',
  'E2BIG',
  'ERR_INVALID_ARG_VALUE',
  'ERR_INVALID_ARG_TYPE',
]);
const DEFAULT_PATH = '/usr/local/bin:/usr/bin:/bin';

type Outcome = Pick<ExitStatus, 'exitCode' | 'failure' | 'message'>;
interface MainExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** The attempts being run, for the signal handlers. */
const runs = new Set<Run>();
/** SIGTERM or SIGINT came: stop the attempts at hand and take no other. */
let leaving = false;
/** pino, once imported (see the top); undefined if it could not be. */
let pinoModule: ReturnType<typeof importPino> | undefined;
const importPino = (onError: (err: unknown) => void) => import('pino').catch((err: unknown) => void onError(err));

// Handlers first: a cancel may arrive while we boot. A run's `ready` file
// then tells the agent it may signal; a cancel.json written before that is
// seen once the job runs.
process.on('SIGUSR2', () => runs.forEach((r) => r.onCancelSignal()));
process.on('SIGTERM', onTerminate);
process.on('SIGINT', onTerminate);
process.on('SIGHUP', () => undefined); // the agent's terminal going away is not our business

function onTerminate(): void {
  leaving = true;
  if (runs.size === 0) process.exit(0);
  runs.forEach((r) => r.onCancel());
}

async function runOne(dir: string): Promise<void> {
  await run(dir, false);
  process.exit(0);
}

/**
 * Runs the attempts named on stdin, one per line, each as it arrives, until
 * end of input and the last of them is done. Our cwd stays the attempts root
 * we were started in: never an attempt's directory, which goes once the agent
 * has its result.
 */
async function serve(token: string | undefined): Promise<void> {
  if (!token) process.exit(2);
  const inFlight = new Set<Promise<void>>();
  process.stdin.setEncoding('utf8');
  for await (const line of lines(process.stdin)) {
    const dir = line.trim();
    if (!dir || leaving) continue;
    const done = run(dir, true).finally(() => inFlight.delete(done));
    inFlight.add(done);
  }
  while (inFlight.size > 0) await Promise.race(inFlight);
  try {
    unlinkSync(token); // our stdout and stderr: nothing there worth keeping once we leave in order
  } catch {
    // already gone
  }
  process.exit(0);
}

async function* lines(input: NodeJS.ReadableStream): AsyncGenerator<string> {
  let rest = '';
  for await (const chunk of input) {
    rest += chunk as string;
    let nl: number;
    while ((nl = rest.indexOf('\n')) >= 0) {
      yield rest.slice(0, nl);
      rest = rest.slice(nl + 1);
    }
  }
  if (rest) yield rest;
}

/**
 * Runs one attempt to its status. A failure of our own with this attempt
 * kills its job and reports it lost, and the other attempts carry on. A full
 * disk is the attempt's failure, not ours: it gets a `disk_full` status (in
 * the room the reserve kept).
 */
async function run(dir: string, handedOver: boolean): Promise<void> {
  let r: Run;
  try {
    r = new Run(dir, handedOver);
  } catch (err) {
    if (isDiskFull(err)) return void diskFullStatus(files(dir), 0, Date.now(), 'the job did not start');
    // No Run, no job: the agent sees no status from a live supervisor for long, so say it here.
    process.stderr.write(`supervisor: cannot run the attempt in ${dir}: ${String(err)}\n`);
    return lostStatus(files(dir), Date.now(), `the supervisor could not run it: ${(err as Error).message}`);
  }
  runs.add(r);
  try {
    await r.main();
  } catch (err) {
    await failSafely(r, err as Error);
  }
  try {
    await r.settled();
  } catch (err) {
    process.stderr.write(`supervisor: could not tidy up the attempt in ${dir}: ${String(err)}\n`);
  }
  runs.delete(r);
}

/**
 * run()'s failure path, which must not throw: a rejection here would end the
 * shared supervisor and every attempt on it (failLost throws if the agent
 * already removed the attempt's directory, for example).
 */
async function failSafely(r: Run, err: Error): Promise<void> {
  try {
    // The job must not outlive its status unseen.
    r.signalGroup('SIGKILL');
    r.allowLogging();
    if (isDiskFull(err)) await r.failDiskFull(err);
    else await r.failLost(err);
  } catch (failed) {
    process.stderr.write(`supervisor: could not report the attempt's failure (${err.message}): ${String(failed)}\n`);
  }
}

/** The verdict the agent would reach on its own once we are gone, published so that it needs not wait for that. */
function lostStatus(f: AttemptFiles, startedAt: number, message: string): void {
  try {
    writeFileAtomicSync(
      f.status,
      JSON.stringify({ exitCode: -1, failure: 'agent_lost', message, startedAt, finishedAt: Date.now(), records: 0 }),
    );
  } catch {
    // nothing more we can do: the agent reports it lost once we have left
  }
}

/**
 * Writes the status on a full disk: the attempt's workspace goes first
 * (nothing reads it once the job is over, and it is often what filled the
 * disk), then the reserve the executor kept, so the status fits where it was.
 */
function writeStatusOnFullDisk(f: AttemptFiles, status: ExitStatus): ExitStatus {
  rmSync(f.work, { recursive: true, force: true });
  rmSync(f.reserve, { force: true });
  writeFileAtomicSync(f.status, JSON.stringify(status), { durable: true });
  return status;
}

function diskFullStatus(f: AttemptFiles, records: number, startedAt: number, what: string): ExitStatus {
  const message = `no space left on device in the agent's work dir: ${what}`;
  return writeStatusOnFullDisk(f, { exitCode: -1, failure: 'disk_full', message, startedAt, finishedAt: Date.now(), records });
}

/**
 * A spec.json an older agent wrote lacks what was added since: the shell
 * executor without limits, no cgroup and no sandbox (the process group only).
 */
function completeSpec(spec: Partial<SpecFile> & AttemptBasics, dir: string): SpecFile {
  const basics = {
    executor: spec.executor ?? 'shell',
    limits: spec.limits ?? { memoryBytes: 0, cpuMillis: 0, cpuWeight: 0, pids: 0 },
    network: spec.network ?? true,
  };
  if (spec.host) return { ...spec, ...basics, host: spec.host };
  const host: HostPlan = {
    cgroup: { mode: 'none', reason: 'the attempt was started by an agent that did not plan cgroups' },
    sandbox: { available: false, reason: 'the attempt was started by an agent that did not look for bubblewrap' },
    pids: DEFAULT_PIDS_LIMIT,
    workDir: dirname(dirname(dir)),
  };
  return { ...spec, ...basics, host };
}

type AttemptBasics = Pick<SpecFile, 'jobId' | 'attempt' | 'argv' | 'script' | 'env' | 'deadline' | 'graceSeconds'>;

class Run {
  readonly f: AttemptFiles;
  private readonly spec: SpecFile;
  /** The job's cgroup and process group; set once the job is about to spawn. */
  private c: Containment | undefined;
  private readonly spool: SpoolWriter;
  /** The attempt's supervisor.log. */
  private readonly logFd: number;
  private readonly startedAt = Date.now();
  private pgid = 0;
  private cancelPending = false;
  private ending: ExitFailure | undefined;
  private mainExited = false;
  private readonly timers: NodeJS.Timeout[] = [];
  /** Set once leftovers of the group are gone or killed: the next attempt may start. */
  private leftoversGone: Promise<void> = Promise.resolve();
  private groupGone: (() => void) | undefined;
  private logger: Promise<Logger | undefined> | undefined;
  /** The time of the line being written (pino's timestamp reads it). */
  private lineTime = 0;
  allowLogging!: () => void;
  private readonly loggingAllowed = new Promise<void>((resolve) => (this.allowLogging = resolve));

  constructor(
    private readonly dir: string,
    handedOver: boolean,
  ) {
    this.f = files(dir);
    // A standby's pid is written by the executor as it hands the attempt over; only a full disk there leaves it to us.
    if (!handedOver || !existsSync(this.f.supervisorPid)) writeFileAtomicSync(this.f.supervisorPid, String(process.pid));
    writeFileAtomicSync(this.f.ready, String(process.pid));
    this.spec = completeSpec(JSON.parse(readFileSync(this.f.spec, 'utf8')) as AttemptBasics, dir);
    // The job's output cannot be kept: it stops (its own clean-up may free space in its grace).
    this.spool = new SpoolWriter(this.f.spool, () => this.stop('disk_full', this.spec.graceSeconds * 1000));
    // Opened now: the agent removes the directory once it has the result, maybe before our last line.
    this.logFd = openSync(this.f.supervisorLog, 'a');
  }

  /** What to run: the job's argv, or `sh -e` on its script, written to a file (a script of any allowed size fits there). */
  private command(): readonly string[] {
    if (this.spec.argv.length > 0) return this.spec.argv;
    writeFileAtomicSync(this.f.script, this.spec.script);
    return ['sh', '-e', this.f.script];
  }

  async main(): Promise<void> {
    const f = this.f;
    mkdirSync(f.work, { recursive: true, mode: 0o700 });
    let command: readonly string[];
    try {
      command = this.command();
    } catch (err) {
      const failure = isDiskFull(err) ? 'disk_full' : 'could_not_start';
      return this.finish({ exitCode: 127, failure, message: `could not write the job's script: ${(err as Error).message}` });
    }
    // Too late to run at all: starting it only to stop it would cost the host (and in the sandbox, a SIGTERM during its set-up is lost).
    if (this.spec.deadline > 0 && Date.now() >= this.spec.deadline)
      return this.finish({ exitCode: -1, failure: 'timeout', message: 'the deadline passed before the job started' });
    const env = this.jobEnv();
    let argv: string[];
    try {
      this.c = Containment.create(this.spec);
      this.c.writeFiles(f.work, this.spec.files ?? []);
      argv = this.c.argv(command, f.work, env, this.spec.argv.length > 0 ? undefined : f.script);
    } catch (err) {
      if (err instanceof ProgramError)
        return this.finish({ exitCode: 127, failure: 'not_runnable', message: `could not start ${err.message}` });
      // The host could not contain the job (its cgroup, its user, its sandbox): the host's fault, tried elsewhere.
      return this.finish({ exitCode: 127, failure: 'could_not_start', message: `could not contain the job: ${(err as Error).message}` });
    }
    const [program, ...args] = argv;
    let child: ChildProcess;
    try {
      child = spawn(program ?? '', args, { cwd: f.work, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      // Arguments no process can be given (a NUL byte): refused before anything ran.
      return this.finish({ exitCode: 127, failure: 'not_runnable', message: `could not start ${program}: ${(err as Error).message}` });
    }
    const exit = new Promise<MainExit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    const drained = this.spoolPipes(child);
    const failed = await this.spawned(child);
    if (failed) {
      const failure = JOB_CAUSED.has((failed as NodeJS.ErrnoException).code ?? '') ? 'not_runnable' : 'could_not_start';
      return this.finish({ exitCode: 127, failure, message: `could not start ${program}: ${failed.message}` });
    }
    this.pgid = child.pid ?? 0;
    this.c.pgid = this.pgid;
    writeFileAtomicSync(f.jobPgid, String(this.pgid));
    this.timers.push(setTimeout(this.allowLogging, LOG_IMPORT_AFTER_MS));
    void this.log('info', { pgid: this.pgid }, 'job started');
    this.armDeadline();
    if (this.cancelPending || existsSync(f.cancel)) this.onCancel();
    const ended = await exit;
    this.mainExited = true;
    this.reapLeftovers(child);
    await drained;
    // With a cgroup, the attempt ends only once nothing of it is left (nothing can hide from it).
    if (this.c.cgroup) await this.leftoversGone;
    return this.finish(this.outcome(ended));
  }

  /** Resolves once the attempt is over for good: its status and last line written, nothing of its group left. */
  async settled(): Promise<void> {
    await this.leftoversGone;
    this.c?.remove();
    for (const t of this.timers) clearTimeout(t);
    await this.logger; // its lines are written (synchronously) once it is there
    closeSync(this.logFd);
  }

  /**
   * Logs to the attempt's supervisor.log in call order, each line with the
   * time it was logged at; pino is imported once logging is allowed (see the
   * top). If that import fails (the install was replaced under a running
   * job), the lines are dropped, said once: the job and its status do not
   * depend on them.
   */
  log(level: 'info' | 'warn' | 'error', fields: object, msg: string): Promise<void> {
    const at = Date.now();
    this.logger ??= this.loggingAllowed.then(async () => {
      pinoModule ??= importPino((err) => this.note(`supervisor: cannot load pino, log lines dropped: ${String(err)}\n`));
      const m = await pinoModule;
      if (!m) return undefined;
      const dest = m.pino.destination({ fd: this.logFd, sync: true });
      dest.on('error', () => undefined); // as above
      const base = { job_id: this.spec.jobId, attempt: this.spec.attempt, pid: process.pid };
      return m.pino({ base, timestamp: () => `,"time":${this.lineTime}` }, dest);
    });
    return this.logger.then((l) => {
      this.lineTime = at;
      try {
        l?.[level](fields, msg);
      } catch {
        // supervisor.log cannot take the line (a full disk): the job and its status do not depend on it
      }
    });
  }

  /** A line without pino, to the attempt's log. */
  private note(text: string): void {
    try {
      writeSync(this.logFd, text);
    } catch {
      process.stderr.write(text);
    }
  }

  private jobEnv(): Record<string, string> {
    const env: Record<string, string> = { PATH: DEFAULT_PATH };
    for (const k of BASE_ENV) {
      const v = process.env[k];
      if (v !== undefined) env[k] = v;
    }
    return {
      ...env,
      ...this.spec.env,
      RUNMESH_JOB_ID: this.spec.jobId,
      RUNMESH_ATTEMPT: String(this.spec.attempt),
      RUNMESH_WORKSPACE: this.f.work,
      [PROGRESS_ENV]: this.f.progress,
    };
  }

  /** Resolves with the spawn error (ENOENT, EACCES...), or undefined once the job runs. */
  private spawned(child: ChildProcess): Promise<Error | undefined> {
    return new Promise((resolve) => {
      child.once('spawn', () => resolve(undefined));
      child.once('error', resolve);
      child.on('error', (err) => void this.log('warn', { err }, 'job process error'));
    });
  }

  /** Every pipe read becomes a record, in arrival order; resolves when both pipes are closed. */
  private spoolPipes(child: ChildProcess): Promise<void> {
    const closed = [child.stdout, child.stderr].map((pipe, i) => {
      const stream = i === 0 ? 'stdout' : 'stderr';
      return new Promise<void>((resolve) => {
        if (!pipe) return resolve();
        pipe.on('data', (d: Buffer) => this.spool.append(stream, d));
        pipe.on('error', () => undefined); // a destroyed pipe: what was read is already spooled
        pipe.on('close', resolve);
      });
    });
    return Promise.all(closed).then(() => undefined);
  }

  /**
   * Leftovers of the group (background children) are part of the job: they
   * go too, and their pipes with them. The next attempt waits until the group
   * is empty or killed, so a late SIGKILL never meets a recycled group id.
   */
  private reapLeftovers(child: ChildProcess): void {
    const c = this.c!;
    if (c.empty()) return; // the common case: nothing left behind, leftoversGone stays resolved
    c.signal('SIGTERM');
    this.leftoversGone = new Promise((resolve) => {
      const poll = setInterval(() => c.empty() && resolve(), LEFTOVER_POLL_MS);
      this.timers.push(
        poll,
        setTimeout(() => {
          c.kill().then(resolve, (err: unknown) => {
            void this.log('error', { err }, 'leftovers of the job survived SIGKILL');
            resolve();
          });
        }, LEFTOVER_GRACE_MS),
      );
      this.groupGone = resolve;
    });
    this.timers.push(
      setTimeout(() => {
        // Only a process that left the group (setsid) can still hold them now.
        void this.log('warn', {}, 'pipes still open after the group was killed; closing them');
        child.stdout?.destroy();
        child.stderr?.destroy();
      }, LEFTOVER_GRACE_MS + PIPE_DRAIN_MS),
    );
  }

  private armDeadline(): void {
    if (!(this.spec.deadline > 0)) return;
    const left = this.spec.deadline - Date.now();
    if (left <= 0) return this.stop('timeout', this.spec.graceSeconds * 1000);
    this.timers.push(setTimeout(() => this.armDeadline(), Math.min(left, MAX_TIMER_MS)));
  }

  /** SIGUSR2 asks about this attempt only if its cancel.json is there: a late one for the attempt before is not ours. */
  onCancelSignal(): void {
    if (existsSync(this.f.cancel)) this.onCancel();
  }

  onCancel(): void {
    if (this.pgid === 0) {
      this.cancelPending = true;
      return;
    }
    this.stop('cancelled', (this.cancelRequest()?.grace ?? this.spec.graceSeconds) * 1000);
  }

  /** SIGTERM to the group now, SIGKILL after `graceMs`; the first reason to stop wins. */
  private stop(why: ExitFailure, graceMs: number): void {
    if (this.ending || this.mainExited || this.pgid === 0) return;
    this.ending = why;
    void this.log('info', { why, grace_ms: graceMs }, 'stopping job');
    this.signalGroup('SIGTERM');
    this.timers.push(
      setTimeout(
        () => {
          this.c?.kill().catch((err: unknown) => void this.log('error', { err }, 'the job survived SIGKILL'));
        },
        Math.max(0, graceMs),
      ),
    );
  }

  signalGroup(sig: NodeJS.Signals): void {
    this.c?.signal(sig);
  }

  private cancelRequest(): CancelRequest | undefined {
    try {
      return JSON.parse(readFileSync(this.f.cancel, 'utf8')) as CancelRequest;
    } catch {
      return undefined;
    }
  }

  /** A signal death reads as 128 + signal number, the way a shell reports it. */
  private outcome({ code, signal }: MainExit): Outcome {
    const exitCode = code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0);
    if (this.ending === 'timeout')
      return { exitCode, failure: 'timeout', message: `deadline passed after ${Math.round((Date.now() - this.startedAt) / 1000)}s` };
    if (this.ending === 'cancelled')
      return { exitCode, failure: 'cancelled', message: `cancelled: ${this.cancelRequest()?.reason ?? 'on request'}` };
    if (this.ending === 'disk_full' || this.spool.failed)
      return { exitCode, failure: 'disk_full', message: `no space left on device in the agent's work dir: ${this.diskFullMessage()}` };
    if (exitCode === 0) return { exitCode, failure: 'none', message: '' };
    // The kernel killed a process of it at its memory limit: why it failed, whichever process that was.
    if ((this.c?.oomKills() ?? 0) > 0) return { exitCode, failure: 'oom', message: this.oomMessage() };
    return { exitCode, failure: 'exit_code', message: signal ? `killed by ${signal}` : `exited with code ${exitCode}` };
  }

  private oomMessage(): string {
    const mib = (bytes: number): string => `${Math.round(bytes / (1024 * 1024))} MiB`;
    const peak = this.c?.usage()?.peakMemoryBytes ?? 0;
    return `killed by the kernel at its memory limit of ${mib(this.spec.limits.memoryBytes)} (peak ${mib(peak)})`;
  }

  private diskFullMessage(): string {
    return `the job was stopped, its output after record ${this.spool.records} was not kept`;
  }

  /**
   * The spool is durable before the status that counts its records; the
   * status is the last thing we write. If the disk is too full for it, the
   * status still goes down (see writeStatusOnFullDisk): a job that exited
   * non-zero with the disk full is counted a `disk_full` failure, the
   * infrastructure's, since that is the likely cause; any other outcome
   * (success, timeout, cancel) stands.
   */
  private async finish(o: Outcome): Promise<void> {
    const usage = this.c?.usage();
    let status: ExitStatus = {
      ...o,
      startedAt: this.startedAt,
      finishedAt: Date.now(),
      records: this.spool.records,
      ...(usage ? { usage } : {}),
    };
    try {
      await this.spool.sealAsync();
      await writeFileDurable(this.f.status, JSON.stringify(status));
      rmSync(this.f.reserve, { force: true });
    } catch (err) {
      if (!isDiskFull(err)) throw err;
      if (status.failure === 'exit_code')
        status = {
          ...status,
          failure: 'disk_full',
          message: `no space left on device in the agent's work dir: the job ended (${status.message})`,
        };
      status = writeStatusOnFullDisk(this.f, status);
    }
    await syncDir(this.dir); // the rename itself
    if (this.c?.empty() ?? true) this.groupGone?.(); // nothing of the job left to kill
    this.allowLogging();
    await this.log('info', { exit_code: status.exitCode, failure: status.failure, records: status.records }, 'job finished');
  }

  /** A failure of ours stopped the attempt before its status: the job went (SIGKILL), the attempt is lost to the host. */
  async failLost(err: Error): Promise<void> {
    await this.log('error', { err }, 'supervisor failed with this attempt');
    if (existsSync(this.f.status)) return;
    try {
      this.spool.seal();
    } catch {
      // the status's count is what the spool holds readably
    }
    const status: ExitStatus = {
      exitCode: -1,
      failure: 'agent_lost',
      message: `the supervisor failed: ${err.message}`,
      startedAt: this.startedAt,
      finishedAt: Date.now(),
      records: this.spool.records,
    };
    writeFileAtomicSync(this.f.status, JSON.stringify(status), { durable: true });
    if (this.c?.empty() ?? true) this.groupGone?.();
  }

  /** A full disk stopped us before the job's status: the job goes, the attempt ends `disk_full`. */
  async failDiskFull(err: Error): Promise<void> {
    if (existsSync(this.f.status)) return;
    await this.log('error', { err }, 'disk full');
    diskFullStatus(this.f, this.spool.records, this.startedAt, this.pgid ? this.diskFullMessage() : 'the job did not start');
    if (this.c?.empty() ?? true) this.groupGone?.();
  }
}

// Last: the class above must be initialised before the first attempt runs.
if (process.argv[2] === '--standby') await serve(process.argv[3]);
else if (process.argv[2]) await runOne(process.argv[2]);
else {
  process.stderr.write('usage: supervisor.js <attemptDir> | --standby <token>\n');
  process.exit(2);
}
