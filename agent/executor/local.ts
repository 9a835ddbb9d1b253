/**
 * The local executor: one directory per attempt under WORKDIR/attempts, run
 * by a detached supervisor process. `start` is idempotent per attempt (the
 * directory is the lock); `recover` finds what an earlier agent process left.
 * One supervisor, booted ahead of the first Assign (a standby, see
 * supervisor.ts), runs every attempt side by side, so an Assign waits neither
 * for Node to start nor for an earlier job. It is replaced by a fresh one
 * after MAX_RUNS attempts (the old one leaves once its own are done), or
 * when it is gone. Without standbys (--no-standby-supervisor), each attempt
 * gets a supervisor of its own, started cold.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { chmod, chown, cp, lchown, lstat, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { isDiskFull } from '../../proto/disk-space.js';
import { LocalAttempt } from './attempt.js';
import { InvalidAttemptSpecError, SupervisorStartError } from './errors.js';
import { EXECUTOR_KINDS, type AttemptHandle, type AttemptSpec, type Executor, type ExecutorDescription } from './executor.js';
import { files, RESERVE_BYTES, writeFileAtomicSync } from './files.js';
import { supervisorArgs } from './liveness.js';
import { describeHost, planHost, type HostPlan, type SpecFile } from './host.js';

const RESERVE = Buffer.alloc(RESERVE_BYTES);
/** Job ids become directory names: no separators, no dots (the dot splits id from attempt). */
const JOB_ID = /^[A-Za-z0-9_-]{1,128}$/;
const ATTEMPT_DIR = /^([A-Za-z0-9_-]{1,128})\.(\d{1,9})$/;
/** A supervisor is handed this many attempts at most, then leaves once they are done; whatever it may leak goes with it. */
const MAX_RUNS = 5000;

/** The compiled supervisor: beside this module in dist/, or in the repo's dist/ when running from TS source. */
export function supervisorPath(): string {
  const url = import.meta.url;
  const here = dirname(fileURLToPath(url));
  const path = url.endsWith('.ts') ? resolve(here, '..', '..', 'dist', 'agent', 'executor', 'supervisor.js') : join(here, 'supervisor.js');
  if (!existsSync(path)) throw new SupervisorStartError(path, 'not built (run npm run build)');
  return path;
}

/** A supervisor started before its attempts, reading their dirs on stdin. */
interface Standby {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Its argument and first log file (under the attempts root). */
  readonly token: string;
  /** Attempts handed to it so far. */
  runs: number;
}

export class LocalExecutor implements Executor {
  private readonly root: string;
  private readonly handles = new Map<string, LocalAttempt>();
  /** Starts in flight, so that a concurrent second start waits for the first instead of racing it. */
  private readonly starting = new Map<string, Promise<AttemptHandle>>();
  /** The supervisor attempts are handed to; booted ahead of the first. */
  private supervisor: Standby | undefined;
  private closed = false;

  private readonly log: Logger;
  /** Keep a standby supervisor booted for the next attempt. */
  private readonly useStandby: boolean;

  private readonly onDiskFull: (err: unknown) => void;
  /** What the host offers to contain jobs, written into every attempt's spec. */
  private readonly host: HostPlan;

  constructor(o: {
    workDir: string;
    logger: Logger;
    standby: boolean;
    onDiskFull: (err: unknown) => void;
    jobUser?: string;
    pidsLimit?: number;
    cgroupParent?: string;
    cgroups?: boolean;
  }) {
    this.root = resolve(o.workDir, 'attempts');
    this.log = o.logger;
    this.useStandby = o.standby;
    this.onDiskFull = o.onDiskFull;
    this.host = planHost(o);
  }

  start(spec: AttemptSpec): Promise<AttemptHandle> {
    const key = `${spec.jobId}.${spec.attempt}`;
    const pending = this.starting.get(key);
    if (pending) return pending;
    const started = this.launch(spec);
    this.starting.set(key, started);
    const forget = (): void => void this.starting.delete(key);
    started.then(forget, forget);
    return started;
  }

  private async launch(spec: AttemptSpec): Promise<AttemptHandle> {
    validate(spec);
    const supervisor = supervisorPath();
    const h = this.handle(spec.jobId, spec.attempt);
    await this.makeRoot();
    try {
      // With a job user, jobs may pass through to their workspace but list nothing and read none of our files (0600).
      await mkdir(h.dir, { mode: this.host.user ? 0o711 : 0o755 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return h; // the same attempt again: it runs already
      throw err;
    }
    const f = files(h.dir);
    let standby: Standby | undefined;
    try {
      const specFile: SpecFile = { ...spec, host: this.host };
      await writeFile(f.spec, JSON.stringify(specFile), { mode: 0o600 }); // its env may hold secrets
      await writeFile(f.spool, '', { mode: 0o600 });
      // The job's to write (as its user), ours to read; its name is in the job's environment.
      await writeFile(f.progress, '', { mode: 0o600 });
      if (this.host.user) await chown(f.progress, this.host.user.uid, this.host.user.gid);
      await writeFile(f.reserve, RESERVE); // the status's room on a full disk (see supervisor.ts)
      await this.restore(spec, f.work);
      standby = this.takeSupervisor();
      if (standby) writeFileSync(f.standby, standby.token); // before the handover: liveness checks need it from then on
    } catch (err) {
      // Nothing ran: no directory is left behind to keep a full disk full, and a retry may start afresh.
      await rm(h.dir, { recursive: true, force: true });
      if (isDiskFull(err)) this.onDiskFull(err);
      throw err;
    }
    let pid: number;
    if (standby) {
      standby.child.stdin!.write(`${h.dir}\n`);
      standby.runs++;
      pid = standby.pid;
    } else {
      pid = await spawnSupervisor(supervisor, h.dir, f.supervisorLog).catch(async (err: unknown) => {
        await rm(h.dir, { recursive: true, force: true }); // nothing ran: a retry may start afresh
        throw err;
      });
    }
    try {
      writeFileAtomicSync(f.supervisorPid, String(pid));
    } catch (err) {
      // The supervisor runs the attempt all the same, and writes its pid itself as it boots.
      if (!isDiskFull(err)) throw err;
      this.onDiskFull(err);
    }
    this.log
      .child({ job_id: spec.jobId, attempt: spec.attempt })
      .info({ supervisor_pid: pid, standby: standby !== undefined, runs: standby?.runs ?? 1 }, 'attempt started');
    this.prepareStandby();
    return h;
  }

  /**
   * The supervisor to hand this attempt to: the standby, booted (or booting)
   * ahead; undefined without standbys, or when one cannot be started (the
   * attempt then gets a supervisor of its own, cold). One that is gone, or
   * has had its share of attempts, is let go (it leaves after its attempts).
   */
  private takeSupervisor(): Standby | undefined {
    const s = this.supervisor;
    if (s && usable(s) && s.runs < MAX_RUNS) return s;
    if (s) retire(s);
    this.supervisor = undefined;
    this.prepareStandby();
    return this.supervisor;
  }

  /**
   * Copies the attempt's cache entries into its workspace (made here; the
   * supervisor finds it there), owned by the job's user. A copy that fails
   * is removed and logged: the job runs as on a miss. A full disk fails the start.
   */
  private async restore(spec: AttemptSpec, work: string): Promise<void> {
    if (!spec.restore?.length) return;
    await mkdir(work, { mode: 0o700 });
    const user = this.host.user;
    for (const r of spec.restore) {
      const dest = join(work, r.path);
      try {
        await mkdir(dirname(dest), { recursive: true, mode: 0o700 });
        await cp(r.from, dest, { recursive: true, verbatimSymlinks: true });
        if (user) await chownTree(work, user.uid, user.gid);
      } catch (err) {
        if (isDiskFull(err)) throw err;
        this.log
          .child({ job_id: spec.jobId, attempt: spec.attempt })
          .warn({ err, path: r.path }, 'could not restore a cache: running without it');
        await rm(dest, { recursive: true, force: true });
      }
    }
  }

  /** Boots the supervisor ahead of the next attempt, unless one is there or we are closed. */
  private prepareStandby(): void {
    if (!this.useStandby || this.closed) return;
    const s = this.supervisor;
    if (s && usable(s) && s.runs < MAX_RUNS) return;
    if (s) retire(s);
    this.supervisor = undefined;
    try {
      this.supervisor = spawnStandby(supervisorPath(), this.root);
    } catch (err) {
      this.log.warn({ err }, 'could not start a standby supervisor; the next attempt starts cold');
    }
  }

  /** Lets the supervisor go (it exits on end of input). Attempts keep running, and it leaves after them. Idempotent. */
  close(): void {
    this.closed = true;
    if (this.supervisor) retire(this.supervisor);
    this.supervisor = undefined;
  }

  describe(): ExecutorDescription {
    return describeHost(this.host);
  }

  /** The attempts root; with a job user, it and the work dir are 0711: a job reaches its own workspace by path, and lists nothing. */
  private async makeRoot(): Promise<void> {
    await mkdir(this.root, { recursive: true });
    if (!this.host.user) return;
    await chmod(dirname(this.root), 0o711);
    await chmod(this.root, 0o711);
  }

  async recover(): Promise<AttemptHandle[]> {
    const names = await readdir(this.root).catch(() => [] as string[]);
    await this.sweepSupervisorLogs(names);
    const out: AttemptHandle[] = [];
    for (const name of names.sort()) {
      const m = ATTEMPT_DIR.exec(name);
      if (!m?.[1]) continue; // not ours
      const dir = join(this.root, name);
      // Abandoned mid-start by an agent that died (nothing ran): it would only take space.
      if (!existsSync(files(dir).spec)) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      else out.push(this.handle(m[1], Number(m[2])));
    }
    this.log.info({ attempts: out.length }, 'attempts recovered');
    // An agent recovers as it starts: boot a standby now, so that even its first Assign starts warm.
    this.prepareStandby();
    return out;
  }

  /**
   * A supervisor removes its own log (stdout and stderr) as it leaves in
   * order; one that crashed leaves it, with what Node printed as it died.
   * Those are logged here, once, and removed.
   */
  private async sweepSupervisorLogs(names: readonly string[]): Promise<void> {
    const logs = names.filter((n) => n.startsWith('.standby-')).map((n) => join(this.root, n));
    if (logs.length === 0) return;
    const live = supervisorArgs();
    for (const path of logs) {
      if (live.has(path)) continue; // an earlier agent's supervisor, still running its attempts
      const text = await readFile(path, 'utf8').catch(() => '');
      if (text.trim()) this.log.warn({ supervisor_output: text.slice(-4096) }, 'a supervisor of an earlier agent process died with output');
      await rm(path, { force: true });
    }
  }

  private handle(jobId: string, attempt: number): LocalAttempt {
    const key = `${jobId}.${attempt}`;
    let h = this.handles.get(key);
    if (!h) {
      const log = this.log.child({ job_id: jobId, attempt });
      h = new LocalAttempt({
        jobId,
        attempt,
        dir: join(this.root, key),
        log,
        onRemoved: () => this.handles.delete(key),
        onDiskFull: this.onDiskFull,
      });
      this.handles.set(key, h);
    }
    return h;
  }
}

/** lchown of `path` and everything under it: links are changed themselves, never followed. */
async function chownTree(path: string, uid: number, gid: number): Promise<void> {
  await lchown(path, uid, gid);
  const st = await lstat(path);
  if (!st.isDirectory()) return;
  for (const name of await readdir(path)) await chownTree(join(path, name), uid, gid);
}

const usable = (s: Standby): boolean => s.child.exitCode === null && s.child.signalCode === null && s.child.stdin?.writable === true;

/** End of input: it leaves once it has nothing to run. */
function retire(s: Standby): void {
  s.child.stdin?.end();
}

const plainPath = (path: string): boolean =>
  path !== '' && !isAbsolute(path) && !path.split('/').some((p) => p === '..' || p === '' || p === '.');

function validate(spec: AttemptSpec): void {
  if (!JOB_ID.test(spec.jobId)) throw new InvalidAttemptSpecError('jobId', `${JSON.stringify(spec.jobId)} is not a valid job id`);
  if (!Number.isInteger(spec.attempt) || spec.attempt < 0)
    throw new InvalidAttemptSpecError('attempt', `${spec.attempt} is not a non-negative integer`);
  if (spec.argv.length > 0 === (spec.script !== ''))
    throw new InvalidAttemptSpecError('argv', 'exactly one of argv and script must be set');
  if (spec.argv.length > 0 && spec.argv[0] === '') throw new InvalidAttemptSpecError('argv', 'the program name is empty');
  if (!(spec.graceSeconds >= 0)) throw new InvalidAttemptSpecError('graceSeconds', `${spec.graceSeconds} is negative`);
  for (const [i, file] of (spec.files ?? []).entries())
    if (!plainPath(file.path))
      throw new InvalidAttemptSpecError(`files[${i}].path`, `${JSON.stringify(file.path)} is not a plain path inside the workspace`);
  for (const [i, r] of (spec.restore ?? []).entries())
    if (!plainPath(r.path))
      throw new InvalidAttemptSpecError(`restore[${i}].path`, `${JSON.stringify(r.path)} is not a plain path inside the workspace`);
  if (!EXECUTOR_KINDS.includes(spec.executor))
    throw new InvalidAttemptSpecError('executor', `${JSON.stringify(spec.executor)} is not one of ${EXECUTOR_KINDS.join(', ')}`);
}

/**
 * A standby supervisor: detached like any other, its log file named by its
 * token in the attempts root, its stdin a pipe from us (attempt dirs, one per
 * line) that the agent process does not wait on. When this process dies the
 * pipe closes and it leaves after its attempt, if it has one.
 */
function spawnStandby(path: string, root: string): Standby {
  mkdirSync(root, { recursive: true });
  const token = join(root, `.standby-${randomUUID()}.log`);
  const out = openSync(token, 'a');
  try {
    const child = spawn(process.execPath, [path, '--standby', token], { cwd: root, detached: true, stdio: ['pipe', out, out] });
    if (child.pid === undefined) throw new SupervisorStartError(path, 'standby did not start');
    child.on('error', () => undefined); // seen as exitCode/writable when it is taken
    child.stdin!.on('error', () => undefined); // EPIPE once it is gone
    child.unref();
    (child.stdin as unknown as { unref?: () => void }).unref?.();
    return { child, pid: child.pid, token, runs: 0 };
  } finally {
    closeSync(out);
  }
}

/**
 * Detached, in its own session, stdio to its log file and unref'd: killing the
 * agent, even with SIGKILL, leaves the supervisor and its job running.
 */
async function spawnSupervisor(path: string, dir: string, logPath: string): Promise<number> {
  const out = openSync(logPath, 'a');
  try {
    // cwd is the attempt dir: the supervisor must not pin whatever directory the agent happened to start in.
    const child = spawn(process.execPath, [path, dir], { cwd: dir, detached: true, stdio: ['ignore', out, out] });
    const pid = child.pid;
    if (pid === undefined) {
      const err = await new Promise<Error>((resolve) => child.once('error', resolve));
      throw new SupervisorStartError(path, err.message, { cause: err });
    }
    child.unref();
    return pid;
  } finally {
    closeSync(out);
  }
}
