/**
 * Domain verbs on a job record: assign, start, finish, lose, cancel, preempt,
 * promote. Pure functions that mutate the record passed in (a fresh copy from
 * `JobRepo.update`) and return false when the event is stale and nothing
 * should be written. All retry and final-state decisions live here.
 */
import { FailureCategory, JobState, type Attempt, type ResourceUsage } from '../../proto/gen/runmesh/v1/job.js';
import type { JobRecord } from './record.js';
import { backoffMs, INFRASTRUCTURE_FAILURES, retries, retryPolicyOf } from './retry-policy.js';
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

/**
 * Attempts of the current attempt sequence (since the last Retry) that count
 * against max_attempts: preemption, or an assignment that never reached its
 * agent, never uses up a retry.
 */
export const countedAttempts = (r: JobRecord): number =>
  r.job.attempts.filter(
    (a) => a.number >= r.job.sequenceStart && a.failure !== F.FAILURE_CATEGORY_PREEMPTED && a.failure !== F.FAILURE_CATEGORY_NOT_DELIVERED,
  ).length;

export const currentAttempt = (r: JobRecord): Attempt | undefined => r.job.attempts.at(-1);

/** The agent of the active attempt, if any. */
export function activeAgent(r: JobRecord): string | undefined {
  return isActive(r.job.state) ? currentAttempt(r)?.agent : undefined;
}

/** `note`, when given, joins the timeline's reason (e.g. why an avoided agent takes it after all). */
export function assign(r: JobRecord, agent: string, now: Date, note = ''): boolean {
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
    artifacts: undefined,
  });
  transition(r.job, S.JOB_STATE_ASSIGNED, now, `assigned to ${agent}${note ? ` (${note})` : ''}`);
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
  const retried = retries(retryPolicyOf(r.job.spec), outcome.failure, outcome.exitCode);
  if (left > 0 && retried) return { state: S.JOB_STATE_WAITING, retry: true };
  if (outcome.failure === F.FAILURE_CATEGORY_TIMEOUT) return { state: S.JOB_STATE_TIMED_OUT, retry: false };
  // DEAD: its retries are used up. A failure its retry_on does not name ends it as it is, retries left or not.
  return { state: r.job.spec.maxAttempts > 1 && retried ? S.JOB_STATE_DEAD : S.JOB_STATE_FAILED, retry: false };
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
  // A new array: the record is a shallow copy (record.ts cloneRecord) whose arrays the stored version shares.
  if (INFRASTRUCTURE_FAILURES.has(a.failure) && a.agent && !r.job.avoidedAgents.includes(a.agent))
    r.job.avoidedAgents = [...r.job.avoidedAgents, a.agent];
  delete r.preempted;
  const why = failed
    ? `attempt ${attempt} ${FailureCategory[a.failure]?.replace('FAILURE_CATEGORY_', '').toLowerCase()}${outcome.message ? `: ${outcome.message}` : ''}`
    : `attempt ${attempt} succeeded`;
  transition(r.job, next.state, now, why);
  if (next.state === S.JOB_STATE_WAITING) {
    r.job.notBefore = new Date(now.getTime() + backoffMs(retryPolicyOf(r.job.spec), countedAttempts(r), random)).toISOString();
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
    // A pipeline job cancelled while held for its needs is held no more (a Retry queues it as any job).
    delete r.held;
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
  // A pipeline job waiting for its needs is released by them (needs.ts), never by a clock.
  if (r.job.state !== S.JOB_STATE_WAITING || r.held) return false;
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

/** When a queued job with a queue timeout times out (ms): the timeout after it last became QUEUED; undefined without one. */
export function queueDeadline(r: JobRecord): number | undefined {
  const timeout = r.job.spec.queueTimeoutSeconds;
  if (!timeout || r.job.state !== S.JOB_STATE_QUEUED) return undefined;
  const since = r.job.timeline.findLast((e) => e.state === S.JOB_STATE_QUEUED)?.at ?? r.job.createdAt;
  return (Date.parse(since ?? '') || 0) + timeout * 1000;
}

/** A queued job past its queue timeout ends TIMED_OUT (failure QUEUE_TIMEOUT); false when it is not due (or not queued). */
export function queueTimedOut(r: JobRecord, now: Date): boolean {
  const deadline = queueDeadline(r);
  if (deadline === undefined || now.getTime() < deadline) return false;
  r.job.failure = F.FAILURE_CATEGORY_QUEUE_TIMEOUT;
  r.job.notBefore = undefined;
  transition(r.job, S.JOB_STATE_TIMED_OUT, now, `queue timeout: no agent took it within ${r.job.spec.queueTimeoutSeconds}s`);
  return true;
}

/** What Retry may re-drive: every end but success. */
export const REDRIVABLE: ReadonlySet<JobState> = new Set([
  S.JOB_STATE_FAILED,
  S.JOB_STATE_DEAD,
  S.JOB_STATE_TIMED_OUT,
  S.JOB_STATE_CANCELLED,
]);

/**
 * Retry (the dead-letter queue's re-drive): a job that ended without
 * succeeding is QUEUED again with a new attempt sequence. Its attempts and
 * timeline stay; attempt numbers go on from the last; max_attempts counts
 * afresh; the agents its earlier sequence avoided are tried again.
 */
export function redrive(r: JobRecord, reason: string, now: Date): boolean {
  if (!REDRIVABLE.has(r.job.state)) return false;
  r.job.redrives += 1;
  r.job.sequenceStart = r.job.attempt + 1;
  r.job.avoidedAgents = [];
  r.job.exitCode = 0;
  r.job.failure = F.FAILURE_CATEGORY_UNSPECIFIED;
  r.job.notBefore = undefined;
  delete r.cancel;
  delete r.preempted;
  transition(r.job, S.JOB_STATE_QUEUED, now, reason);
  return true;
}
