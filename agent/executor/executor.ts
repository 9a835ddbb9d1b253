/**
 * The executor contract: runs one attempt as a child process in its own
 * process group and workspace, under a supervisor process that outlives the
 * agent. Everything an attempt produces goes to disk first (the spool), so a
 * restarted agent can find the attempt, reattach and stream on.
 */

export interface AttemptSpec {
  readonly jobId: string;
  readonly attempt: number;
  /** Exactly one of argv (non-empty) and script is set. */
  readonly argv: readonly string[];
  readonly script: string;
  readonly env: Readonly<Record<string, string>>;
  /** Absolute deadline (ms since epoch); the supervisor enforces it even if the agent is gone. 0 means none. */
  readonly deadline: number;
  /** Seconds between SIGTERM and SIGKILL on cancel or timeout. */
  readonly graceSeconds: number;
  /** Which executor runs it (see ExecutorKind). */
  readonly executor: ExecutorKind;
  /** What the job may use; enforced through its cgroup where the host has one (see cgroup.ts). */
  readonly limits: AttemptLimits;
  /** Sandbox only: false gives the job a network namespace of its own with nothing in it. Ignored by `shell`. */
  readonly network: boolean;
  /**
   * Files written into the workspace before the job starts (secret files):
   * `path` relative to the workspace, without `..`; mode 0600, owned by the
   * job's user. Default none.
   */
  readonly files?: readonly WorkspaceFile[];
  /**
   * Cache entries copied into the workspace before the job starts (see
   * agent/cache/): `from` (a file or directory of the agent's) to `path`,
   * relative to the workspace, without `..`; owned by the job's user. A copy
   * that fails is logged and left out: the job runs without it. Default none.
   */
  readonly restore?: readonly { readonly path: string; readonly from: string }[];
}

export interface WorkspaceFile {
  readonly path: string;
  readonly content: string;
}

/**
 * `shell`: a process (group) on the host, as the agent's user or --job-user.
 * `sandbox`: the same under bubblewrap: the workspace writable, system
 * directories read-only, nothing else of the host visible, its own PID namespace.
 */
export type ExecutorKind = 'shell' | 'sandbox';
export const EXECUTOR_KINDS: readonly ExecutorKind[] = ['shell', 'sandbox'];

/** Limits of one attempt; 0 means none of that kind. */
export interface AttemptLimits {
  /** Hard memory limit (bytes): over it the kernel kills the job, which ends `oom`. */
  readonly memoryBytes: number;
  /** CPU time per wall second, in thousandths of a core (1000 = one core). */
  readonly cpuMillis: number;
  /** Share of contended CPU against other attempts, 1..10000 (cgroup v2's cpu.weight scale; 100 is the default). */
  readonly cpuWeight: number;
  /** Processes and threads the job may have at once. */
  readonly pids: number;
}

/** What an attempt used, read from its cgroup when it ended; absent without one. */
export interface AttemptUsage {
  /** Highest memory use seen (bytes). */
  readonly peakMemoryBytes: number;
  /** User + system CPU time of every process of the job. */
  readonly cpuSeconds: number;
}

export type OutputStream = 'stdout' | 'stderr';

/** One spool record: what one read of one pipe produced. Numbered from 0 without gaps. */
export interface LogRecord {
  readonly seq: number;
  readonly stream: OutputStream;
  readonly data: Buffer;
}

/**
 * `could_not_start`: the host failed to start it (the agent's fault); `not_runnable`: the job cannot be started anywhere (its own);
 * `disk_full`: the work dir's disk filled (ENOSPC) and the job was stopped, its output after that point not kept;
 * `oom`: the kernel killed a process of the job for going over its memory limit (the job's own fault).
 */
export type ExitFailure =
  'none' | 'exit_code' | 'timeout' | 'cancelled' | 'could_not_start' | 'not_runnable' | 'agent_lost' | 'disk_full' | 'oom';

export interface ExitStatus {
  readonly exitCode: number;
  readonly failure: ExitFailure;
  readonly message: string;
  readonly startedAt: number;
  readonly finishedAt: number;
  /** Records in the spool, final. */
  readonly records: number;
  /** Read from the attempt's cgroup; absent when it had none (process-group fallback) or the attempt never ran. */
  readonly usage?: AttemptUsage;
}

/** The attempt's progress file's name in its directory (files.ts; the supervisor imports that file alone). */
export { PROGRESS_FILE } from './files.js';

export interface AttemptHandle {
  readonly jobId: string;
  readonly attempt: number;
  readonly dir: string;
  /**
   * Yields spool records from `fromSeq` on, as they are written, and ends once
   * the attempt has exited and every record was yielded (or on abort).
   */
  records(fromSeq: number, signal: AbortSignal): AsyncIterable<LogRecord>;
  /** Resolves once the attempt has exited and its status is on disk. */
  exited(): Promise<ExitStatus>;
  /** SIGTERM to the process group, SIGKILL after `graceSeconds`. Idempotent. */
  cancel(graceSeconds: number, reason: string): Promise<void>;
  /** Drops the workspace and spool: call after the control plane acknowledged the result. */
  remove(): Promise<void>;
  /** Drops the workspace of an attempt that has exited, keeping its spool; false when there was none or it runs. */
  dropWorkspace(): Promise<boolean>;
}

export interface Executor {
  /** Starts an attempt; a second start of the same (jobId, attempt) returns the existing handle. */
  start(spec: AttemptSpec): Promise<AttemptHandle>;
  /** Attempts left on disk by an earlier agent process (running or finished, not yet removed). */
  recover(): Promise<AttemptHandle[]>;
  /** Releases what the executor holds for future attempts; running attempts carry on. Idempotent. */
  close(): void;
  /** How attempts are contained on this host, and which executors it offers: said once at start, reported to the control plane. */
  describe(): ExecutorDescription;
}

export interface ExecutorDescription {
  /** One line for operators, e.g. `cgroup v2 /sys/fs/cgroup/runmesh.slice (cpu memory pids)` or `process group (no writable cgroup: ...)`. */
  readonly containment: string;
  /** The executors this host can run: `shell` always, `sandbox` where bubblewrap works. */
  readonly executors: readonly ExecutorKind[];
}
