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
 * `disk_full`: the work dir's disk filled (ENOSPC) and the job was stopped, its output after that point not kept.
 */
export type ExitFailure = 'none' | 'exit_code' | 'timeout' | 'cancelled' | 'could_not_start' | 'not_runnable' | 'agent_lost' | 'disk_full';

export interface ExitStatus {
  readonly exitCode: number;
  readonly failure: ExitFailure;
  readonly message: string;
  readonly startedAt: number;
  readonly finishedAt: number;
  /** Records in the spool, final. */
  readonly records: number;
}

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
}
