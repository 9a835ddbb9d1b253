/** Errors of the jobs area. Match with the `isX` guards (they walk the `cause` chain), never on message text. */
import { NamedError, hasCause } from '../../proto/cause.js';
import { JobState } from '../../proto/gen/runmesh/v1/job.js';

export class JobError extends NamedError {}

export class IllegalTransitionError extends JobError {
  constructor(
    readonly jobId: string,
    readonly from: JobState,
    readonly to: JobState,
  ) {
    super(`job ${jobId}: illegal transition ${JobState[from]} -> ${JobState[to]}`);
  }
}

export class JobNotFoundError extends JobError {
  constructor(readonly jobId: string) {
    super(`job ${jobId} not found`);
  }
}

/** A request field failed validation; `field` names it for the INVALID_ARGUMENT message. */
export class ValidationError extends JobError {
  constructor(
    readonly field: string,
    readonly detail: string,
  ) {
    super(`${field}: ${detail}`);
  }
}

/** A fenced write lost: someone else changed the job (or a newer attempt exists). */
export class StaleWriteError extends JobError {
  constructor(
    readonly jobId: string,
    detail: string,
  ) {
    super(`job ${jobId}: stale write (${detail})`);
  }
}

/** A leader-only write from a peer that is not (or no longer provably) the leader. */
export class NotLeaderError extends JobError {
  constructor() {
    super('this peer is not the scheduling leader');
  }
}

/** A stored job record that cannot be decoded: someone else's write, or a bug; never a store failure. */
export class UnreadableRecordError extends JobError {
  constructor(
    readonly jobId: string,
    options?: ErrorOptions,
  ) {
    super(`job ${jobId}: the stored record cannot be read`, options);
  }
}

export const isUnreadableRecord = (err: unknown): boolean => hasCause(err, UnreadableRecordError);

export const isJobNotFound = (err: unknown): boolean => hasCause(err, JobNotFoundError);
export const isValidation = (err: unknown): boolean => hasCause(err, ValidationError);
export const isStaleWrite = (err: unknown): boolean => hasCause(err, StaleWriteError);
export const isNotLeader = (err: unknown): boolean => hasCause(err, NotLeaderError);

/** A job could not take a slot of its concurrency group: the jobs in `holders` fill it. */
export class GroupFullError extends JobError {
  constructor(
    readonly group: string,
    readonly limit: number,
    readonly holders: readonly string[],
  ) {
    super(`${group} is full: ${holders.length}/${limit} running`);
  }
}

export const isGroupFull = (err: unknown): boolean => hasCause(err, GroupFullError);
