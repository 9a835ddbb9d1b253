/**
 * The job state machine, in one place. Every transition goes through
 * `transition()`, which refuses illegal moves and appends to the timeline.
 */
import { JobState, type Job, type TimelineEntry } from '../../proto/gen/runmesh/v1/job.js';
import { IllegalTransitionError } from './errors.js';

const S = JobState;

const TERMINAL: ReadonlySet<JobState> = new Set([
  S.JOB_STATE_SUCCEEDED,
  S.JOB_STATE_FAILED,
  S.JOB_STATE_CANCELLED,
  S.JOB_STATE_TIMED_OUT,
  S.JOB_STATE_DEAD,
  S.JOB_STATE_SKIPPED,
]);

const FINISH = [S.JOB_STATE_SUCCEEDED, S.JOB_STATE_FAILED, S.JOB_STATE_CANCELLED, S.JOB_STATE_TIMED_OUT, S.JOB_STATE_DEAD];

const ALLOWED: ReadonlyMap<JobState, ReadonlySet<JobState>> = new Map([
  // TIMED_OUT: its queue timeout passed before an agent took it (lifecycle.ts queueTimedOut).
  [S.JOB_STATE_QUEUED, new Set([S.JOB_STATE_ASSIGNED, S.JOB_STATE_WAITING, S.JOB_STATE_CANCELLED, S.JOB_STATE_TIMED_OUT])],
  // SKIPPED: a pipeline job whose need ended without success (jobs/needs.ts).
  [S.JOB_STATE_WAITING, new Set([S.JOB_STATE_QUEUED, S.JOB_STATE_CANCELLED, S.JOB_STATE_SKIPPED])],
  // An assigned attempt may end before the agent reports RUNNING (could not start, agent lost).
  [S.JOB_STATE_ASSIGNED, new Set([S.JOB_STATE_RUNNING, S.JOB_STATE_QUEUED, S.JOB_STATE_WAITING, ...FINISH])],
  [S.JOB_STATE_RUNNING, new Set([S.JOB_STATE_QUEUED, S.JOB_STATE_WAITING, ...FINISH])],
  // Retry re-drives an end without success (lifecycle.ts redrive): queued again, with a new attempt sequence.
  ...[S.JOB_STATE_FAILED, S.JOB_STATE_DEAD, S.JOB_STATE_TIMED_OUT, S.JOB_STATE_CANCELLED].map(
    (from) => [from, new Set([S.JOB_STATE_QUEUED])] as const,
  ),
  // A need it was skipped for was retried (jobs/needs.ts unskip): held again, to be decided once its needs end.
  [S.JOB_STATE_SKIPPED, new Set([S.JOB_STATE_WAITING])],
]);

export const isTerminal = (state: JobState): boolean => TERMINAL.has(state);

export const isActive = (state: JobState): boolean => state === S.JOB_STATE_ASSIGNED || state === S.JOB_STATE_RUNNING;

export function canTransition(from: JobState, to: JobState): boolean {
  return ALLOWED.get(from)?.has(to) ?? false;
}

/** Moves `job` to `to` (mutating it), recording the transition; throws on an illegal move. */
export function transition(job: Job, to: JobState, at: Date, reason = ''): TimelineEntry {
  if (!canTransition(job.state, to)) throw new IllegalTransitionError(job.id, job.state, to);
  const entry: TimelineEntry = { state: to, at: at.toISOString(), attempt: job.attempt, reason };
  job.state = to;
  job.updatedAt = entry.at;
  job.timeline.push(entry);
  if (to !== S.JOB_STATE_QUEUED && to !== S.JOB_STATE_WAITING) {
    job.waitingReason = '';
    job.waitingOnGroup = '';
  }
  return entry;
}

/** `JOB_STATE_RUNNING` → `running`. */
export const stateName = (state: JobState): string => (JobState[state] ?? String(state)).replace(/^JOB_STATE_/, '').toLowerCase();
