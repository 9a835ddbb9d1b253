/**
 * agent/executor/: runs attempts as supervised process groups with an on-disk
 * spool. Each attempt lives in WORKDIR/attempts/<jobId>.<attempt>/ (spec.json,
 * output.spool, status.json, work/), run by a detached supervisor
 * (supervisor.ts) that outlives the agent; the handle (attempt.ts) works from
 * that directory alone, so a restarted agent picks up where the last one was.
 */
import type { Logger } from 'pino';
import type { Executor } from './executor.js';
import { LocalExecutor } from './local.js';

export * from './executor.js';
export {
  isAttemptRunningError,
  isInvalidAttemptSpecError,
  AttemptRunningError,
  InvalidAttemptSpecError,
  SupervisorStartError,
} from './errors.js';

export interface ExecutorOptions {
  /** The agent's work directory; attempts go under `<workDir>/attempts`. */
  readonly workDir: string;
  /** Parent logger; each attempt logs through a child bound to job_id and attempt. */
  readonly logger: Logger;
  /** Keep a supervisor booted ahead of the next attempt (see supervisor.ts). Default true. */
  readonly standby?: boolean;
  /** Told of every write the executor saw fail for a full disk. Default: nothing. */
  readonly onDiskFull?: (err: unknown) => void;
  /** Run jobs as this user (name or uid), not the agent's own; the agent must be root. Default: the agent's user. */
  readonly jobUser?: string;
  /** Processes and threads one attempt may have at once, unless its spec asks for fewer. Default 4096. */
  readonly pidsLimit?: number;
  /** The cgroup (absolute path in the cgroup v2 tree, or under each v1 hierarchy) attempts are made under. Default: see cgroup.ts. */
  readonly cgroupParent?: string;
  /** false: no cgroups even where the host has them (another system manages them); jobs have their process group only. Default true. */
  readonly cgroups?: boolean;
}

export function createExecutor(options: ExecutorOptions): Executor {
  return new LocalExecutor({ ...options, standby: options.standby ?? true, onDiskFull: options.onDiskFull ?? (() => undefined) });
}
