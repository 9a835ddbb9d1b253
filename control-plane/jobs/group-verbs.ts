/**
 * Domain verbs for a job in a concurrency group: wait for a slot, be skipped
 * or cancelled on arrival at a full group, be superseded by a newer job.
 * Pure, like lifecycle.ts: they mutate the record given and return false when
 * there is nothing to write.
 */
import { FailureCategory, JobState } from '../../proto/gen/runmesh/v1/job.js';
import { requestCancel } from './lifecycle.js';
import type { JobRecord } from './record.js';
import { isTerminal, transition } from './state.js';

/** A queued job waits for a slot of `group` (its label); false when already said. */
export function waitForGroup(r: JobRecord, group: string, reason: string): boolean {
  if (r.job.state !== JobState.JOB_STATE_QUEUED) return false;
  if (r.job.waitingReason === reason && r.job.waitingOnGroup === group) return false;
  r.job.waitingReason = reason;
  r.job.waitingOnGroup = group;
  return true;
}

/** A queued job's group has room for it now: what said it waited on the group goes; false when nothing said so. */
export function groupHasRoom(r: JobRecord): boolean {
  if (r.job.state !== JobState.JOB_STATE_QUEUED || r.job.waitingOnGroup === '') return false;
  r.job.waitingOnGroup = '';
  r.job.waitingReason = '';
  return true;
}

/** A queued job that found its group full ends unrun: skipped (`skip`) or cancelled (`cancel-newest`). */
export function endForFullGroup(r: JobRecord, how: 'skip' | 'cancel', reason: string, now: Date): boolean {
  if (r.job.state !== JobState.JOB_STATE_QUEUED) return false;
  r.job.failure = how === 'skip' ? FailureCategory.FAILURE_CATEGORY_CONCURRENCY_SKIPPED : FailureCategory.FAILURE_CATEGORY_CANCELLED;
  transition(r.job, JobState.JOB_STATE_CANCELLED, now, reason);
  return true;
}

/**
 * A newer job of the group (`by`) supersedes this one: a queued job is
 * cancelled at once, an active one is marked for its agent to cancel
 * ('agent'). 'noop' when it has ended or a cancel is already under way.
 */
export function supersede(r: JobRecord, by: string, reason: string, now: Date): 'done' | 'agent' | 'noop' {
  if (isTerminal(r.job.state) || r.cancel) return 'noop';
  r.job.supersededBy = by;
  const outcome = requestCancel(r, reason, now);
  if (outcome === 'done') r.job.failure = FailureCategory.FAILURE_CATEGORY_CANCELLED;
  return outcome;
}
