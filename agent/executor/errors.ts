/** Errors raised by agent/executor/. Guards walk the `cause` chain, so wrapped errors still match. */
import { NamedError, hasCause } from '../../proto/cause.js';

/** An AttemptSpec the executor refuses before touching the disk; `field` names the culprit. */
export class InvalidAttemptSpecError extends NamedError {
  constructor(
    readonly field: string,
    readonly detail: string,
  ) {
    super(`${field}: ${detail}`);
  }
}

/** `remove()` on an attempt that has not exited: its workspace is still in use. */
export class AttemptRunningError extends NamedError {
  constructor(
    readonly jobId: string,
    readonly attempt: number,
  ) {
    super(`attempt ${jobId}.${attempt} is still running; cancel it and wait for exited() first`);
  }
}

/** The supervisor could not be launched (not built, or spawn failed); the attempt never ran. */
export class SupervisorStartError extends NamedError {
  constructor(
    readonly path: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`could not start the supervisor ${path}: ${detail}`, options);
  }
}

export const isInvalidAttemptSpecError = (err: unknown): boolean => hasCause(err, InvalidAttemptSpecError);
export const isAttemptRunningError = (err: unknown): boolean => hasCause(err, AttemptRunningError);

/** An executor option the host cannot honour (an unknown --job-user, a bad pids limit); `option` names it. */
export class InvalidExecutorOptionError extends NamedError {
  constructor(
    readonly option: string,
    readonly detail: string,
  ) {
    super(`${option}: ${detail}`);
  }
}
