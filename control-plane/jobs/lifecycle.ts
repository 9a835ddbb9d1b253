/**
 * Domain verbs on a job record: assign, start, finish, lose, cancel, preempt,
 * promote. Pure functions that mutate the record passed in (a fresh copy from
 * `JobRepo.update`) and return false when the event is stale and nothing
 * should be written. All retry and final-state decisions live here.
 */
import { FailureCategory, JobState, type Attempt, type ResourceUsage } from '../../proto/gen/runmesh/v1/job.js';
import type { JobRecord } from './record.js';
import { isActive, isTerminal, transition } from './state.js';

const S = JobState;
const F = FailureCategory;

export interface AttemptOutcome {
  exitCode: number;
  failure: FailureCategory;
  message: string;
  logRecords: number;
  startedAt?: string;
  finishedAt?: string;
  /** What the attempt used, when its agent measured it (its cgroup). */
  usage?: ResourceUsage;
}

/** Retry backoff: 1 s, 2 s, 4 s … capped at 60 s, ±20% jitter. */
export function retryDelayMs(failedAttempts: number, random = Math.random): number {
  const base = Math.min(60_000, 1000 * 2 ** Math.max(0, failedAttempts - 1));
  return Math.round(base * (0.8 + 0.4 * random()));
}

/** Attempts that count against max_attempts: preemption, or an assignment that never reached its agent, never uses up a retry. */
export const countedAttempts = (r: JobRecord): number =>
  r.job.attempts.filter((a) => a.failure !== F.FAILURE_CATEGORY_PREEMPTED && a.failure !== F.FAILURE_CATEGORY_NOT_DELIVERED).length;

export const currentAttempt = (r: JobRecord): Attempt | undefined => r.job.attempts.at(-1);

/** The agent of the active attempt, if any. */
export function activeAgent(r: JobRecord): string | undefined {
  return isActive(r.job.state) ? currentAttempt(r)?.agent : undefined;
}

export function assign(r: JobRecord, agent: string, now: Date): boolean {
  if (r.job.state !== S.JOB_STATE_QUEUED) return false;
  r.job.attempt += 1;
  r.job.attempts.push({
    number: r.job.attempt,
    agent,
    state: S.JOB_STATE_ASSIGNED,
    assignedAt: now.toISOString(),
    startedAt: undefined,
    finishedAt: undefined,
    exitCode: 0,
    failure: F.FAILURE_CATEGORY_UNSPECIFIED,
    message: '',
    logRecords: 0,
    usage: undefined,
  });
  transition(r.job, S.JOB_STATE_ASSIGNED, now, `assigned to ${agent}`);
  return true;
}

export function started(r: JobRecord, attempt: number, now: Date): boolean {
  const a = currentAttempt(r);
  if (r.job.attempt !== attempt || r.job.state !== S.JOB_STATE_ASSIGNED || !a) return false;
  a.state = S.JOB_STATE_RUNNING;
  a.startedAt = now.toISOString();
  transition(r.job, S.JOB_STATE_RUNNING, now, `running on ${a.agent}`);
  return true;
}

function nextState(r: JobRecord, outcome: AttemptOutcome): { state: JobState; retry: boolean } {
  if (outcome.failure === F.FAILURE_CATEGORY_UNSPECIFIED && outcome.exitCode === 0) return { state: S.JOB_STATE_SUCCEEDED, retry: false };
  if (outcome.failure === F.FAILURE_CATEGORY_PREEMPTED || outcome.failure === F.FAILURE_CATEGORY_NOT_DELIVERED)
    return { state: S.JOB_STATE_QUEUED, retry: true };
  if (r.cancel || outcome.failure === F.FAILURE_CATEGORY_CANCELLED) return { state: S.JOB_STATE_CANCELLED, retry: false };
  // Another try fails the same way: the program is missing or cannot be run.
  if (outcome.failure === F.FAILURE_CATEGORY_NOT_RUNNABLE) return { state: S.JOB_STATE_FAILED, retry: false };
  // An agent refused the spec as unsigned or altered: another try could land on an agent that trusts anything.
  if (outcome.failure === F.FAILURE_CATEGORY_UNTRUSTED) return { state: S.JOB_STATE_FAILED, retry: false };
  const left = r.job.spec.maxAttempts - countedAttempts(r);
  if (left > 0) return { state: S.JOB_STATE_WAITING, retry: true };
  if (outcome.failure === F.FAILURE_CATEGORY_TIMEOUT) return { state: S.JOB_STATE_TIMED_OUT, retry: false };
  return { state: r.job.spec.maxAttempts > 1 ? S.JOB_STATE_DEAD : S.JOB_STATE_FAILED, retry: false };
}

/** Records how an attempt ended and moves the job on (done, retry later, or requeue now). */
export function finish(r: JobRecord, attempt: number, outcome: AttemptOutcome, now: Date, random = Math.random): boolean {
  const a = currentAttempt(r);
  if (r.job.attempt !== attempt || !isActive(r.job.state) || !a) return false;
  if (r.preempted && outcome.failure === F.FAILURE_CATEGORY_CANCELLED) outcome = { ...outcome, failure: F.FAILURE_CATEGORY_PREEMPTED };
  const failed = !(outcome.failure === F.FAILURE_CATEGORY_UNSPECIFIED && outcome.exitCode === 0);
  Object.assign(a, {
    exitCode: outcome.exitCode,
    failure: failed && outcome.failure === F.FAILURE_CATEGORY_UNSPECIFIED ? F.FAILURE_CATEGORY_EXIT_CODE : outcome.failure,
    message: outcome.message,
    logRecords: outcome.logRecords,
    finishedAt: outcome.finishedAt ?? now.toISOString(),
  });
  if (outcome.startedAt && !a.startedAt) a.startedAt = outcome.startedAt;
  if (outcome.usage) a.usage = outcome.usage;
  const next = nextState(r, { ...outcome, failure: a.failure });
  a.state = failed
    ? a.failure === F.FAILURE_CATEGORY_TIMEOUT
      ? S.JOB_STATE_TIMED_OUT
      : a.failure === F.FAILURE_CATEGORY_CANCELLED
        ? S.JOB_STATE_CANCELLED
        : S.JOB_STATE_FAILED
    : S.JOB_STATE_SUCCEEDED;
  r.job.exitCode = a.exitCode;
  r.job.failure = a.failure;
  delete r.preempted;
  const why = failed
    ? `attempt ${attempt} ${FailureCategory[a.failure]?.replace('FAILURE_CATEGORY_', '').toLowerCase()}${outcome.message ? `: ${outcome.message}` : ''}`
    : `attempt ${attempt} succeeded`;
  transition(r.job, next.state, now, why);
  if (next.state === S.JOB_STATE_WAITING) {
    r.job.notBefore = new Date(now.getTime() + retryDelayMs(countedAttempts(r), random)).toISOString();
    r.job.waitingReason = `retry ${countedAttempts(r) + 1} of ${r.job.spec.maxAttempts} after backoff`;
  }
  if (isTerminal(next.state)) delete r.cancel;
  return true;
}

/** The agent holding the attempt is gone for good. */
export function lost(r: JobRecord, attempt: number, reason: string, now: Date): boolean {
  return finish(
    r,
    attempt,
    { exitCode: -1, failure: F.FAILURE_CATEGORY_AGENT_LOST, message: reason, logRecords: currentAttempt(r)?.logRecords ?? 0 },
    now,
  );
}

/**
 * The assignment could not be handed to its agent (no peer holds it): nothing
 * ran, so the job is queued again at once without using up a retry. Only for
 * an attempt still ASSIGNED; one the agent reported is left to the lost sweep.
 */
export function undelivered(r: JobRecord, attempt: number, reason: string, now: Date): boolean {
  if (r.job.state !== S.JOB_STATE_ASSIGNED || r.job.attempt !== attempt) return false;
  return finish(r, attempt, { exitCode: -1, failure: F.FAILURE_CATEGORY_NOT_DELIVERED, message: reason, logRecords: 0 }, now);
}

/** Cancel: ends a queued job at once; marks an active one so its agent is told (returns 'agent'). */
export function requestCancel(r: JobRecord, reason: string, now: Date): 'done' | 'agent' | 'noop' {
  if (isTerminal(r.job.state)) return 'noop';
  if (!isActive(r.job.state)) {
    transition(r.job, S.JOB_STATE_CANCELLED, now, reason || 'cancelled');
    return 'done';
  }
  r.cancel = { reason: reason || 'cancelled', at: now.toISOString() };
  return 'agent';
}

/** Marks the active attempt for preemption; its cancellation result requeues the job. */
export function preempt(r: JobRecord, attempt: number): boolean {
  if (r.job.attempt !== attempt || !isActive(r.job.state) || r.cancel) return false;
  r.preempted = true;
  return true;
}

/** WAITING whose backoff is over becomes QUEUED. */
export function promote(r: JobRecord, now: Date): boolean {
  if (r.job.state !== S.JOB_STATE_WAITING) return false;
  if (r.job.notBefore && Date.parse(r.job.notBefore) > now.getTime()) return false;
  r.job.notBefore = undefined;
  transition(r.job, S.JOB_STATE_QUEUED, now, 'backoff over');
  return true;
}

/** Sets the human reason a queued job waits; false when unchanged (nothing to write). */
export function setWaitingReason(r: JobRecord, reason: string): boolean {
  if (r.job.state !== S.JOB_STATE_QUEUED || r.job.waitingReason === reason) return false;
  r.job.waitingReason = reason;
  return true;
}
