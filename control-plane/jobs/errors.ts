/** Errors of the jobs area. Match with the `isX` guards (they walk the `cause` chain), never on message text. */
import { hasCause } from '../../proto/cause.js';
import { JobState } from '../../proto/gen/runmesh/v1/job.js';

export class JobError extends Error {
  override name = 'JobError';
}

export class IllegalTransitionError extends JobError {
  override name = 'IllegalTransitionError';
  constructor(
    readonly jobId: string,
    readonly from: JobState,
    readonly to: JobState,
  ) {
    super(`job ${jobId}: illegal transition ${JobState[from]} -> ${JobState[to]}`);
  }
}

export class JobNotFoundError extends JobError {
  override name = 'JobNotFoundError';
  constructor(readonly jobId: string) {
    super(`job ${jobId} not found`);
  }
}

/** A request field failed validation; `field` names it for the INVALID_ARGUMENT message. */
export class ValidationError extends JobError {
  override name = 'ValidationError';
  constructor(
    readonly field: string,
    readonly detail: string,
  ) {
    super(`${field}: ${detail}`);
  }
}

/** A fenced write lost: someone else changed the job (or a newer attempt exists). */
export class StaleWriteError extends JobError {
  override name = 'StaleWriteError';
  constructor(
    readonly jobId: string,
    detail: string,
  ) {
    super(`job ${jobId}: stale write (${detail})`);
  }
}

/** A leader-only write from a peer that is not (or no longer provably) the leader. */
export class NotLeaderError extends JobError {
  override name = 'NotLeaderError';
  constructor() {
    super('this peer is not the scheduling leader');
  }
}

export const isJobNotFound = (err: unknown): boolean => hasCause(err, JobNotFoundError);
export const isValidation = (err: unknown): boolean => hasCause(err, ValidationError);
export const isStaleWrite = (err: unknown): boolean => hasCause(err, StaleWriteError);
export const isNotLeader = (err: unknown): boolean => hasCause(err, NotLeaderError);
