/**
 * Pipelines on one job record: a job that needs others is stored held
 * (WAITING, `held`), then released to the queue or skipped by what its needs
 * came to. Like lifecycle.ts, pure functions on the record passed in; the
 * decisions across jobs are the leader's (pipelines/release.ts).
 *
 * What a need's end means for the jobs that need it (GitLab's semantics):
 * SUCCEEDED lets them run; FAILED, TIMED_OUT or DEAD lets them run only when
 * the need says `allow_failure`, and skips them otherwise; CANCELLED and
 * SKIPPED always skip them.
 */
import { JobState } from '../../proto/gen/runmesh/v1/job.js';
import type { JobRecord } from './record.js';
import { isTerminal, stateName, transition } from './state.js';

const S = JobState;

/** What the jobs a record needs are, as far as the one deciding knows. */
export interface NeedOutcome {
  id: string;
  name: string;
  /** Undefined: the need is not (or no longer) stored. */
  state: JobState | undefined;
  allowFailure: boolean;
}

export type Verdict = { kind: 'wait' } | { kind: 'release'; reason: string } | { kind: 'skip'; reason: string };

const FAILED: ReadonlySet<JobState> = new Set([S.JOB_STATE_FAILED, S.JOB_STATE_TIMED_OUT, S.JOB_STATE_DEAD]);

/** True when a need that ended in `state` lets the jobs needing it run. */
export function lets(state: JobState, allowFailure: boolean): boolean {
  return state === S.JOB_STATE_SUCCEEDED || (allowFailure && FAILED.has(state));
}

/**
 * The decision for a held job: skip as soon as one need ended without
 * letting it run (or is gone for good: `gone`), run once all have let it,
 * else wait.
 */
export function decide(needs: readonly NeedOutcome[], gone: (n: NeedOutcome) => boolean): Verdict {
  const blocking = needs.filter((n) => (n.state === undefined ? gone(n) : isTerminal(n.state) && !lets(n.state, n.allowFailure)));
  if (blocking.length > 0) {
    const what = blocking.map((n) => `${n.name} ${n.state === undefined ? 'no longer stored' : stateName(n.state)}`);
    return { kind: 'skip', reason: `need ${what.join(', ')}` };
  }
  if (needs.some((n) => n.state === undefined || !isTerminal(n.state))) return { kind: 'wait' };
  const allowed = needs.filter((n) => n.state !== S.JOB_STATE_SUCCEEDED).map((n) => n.name);
  return { kind: 'release', reason: allowed.length > 0 ? `needs done (allowed to fail: ${allowed.join(', ')})` : 'needs done' };
}

/**
 * Makes a drafted (not yet stored) QUEUED record a held one: WAITING from
 * its submission, for the jobs `needIds` (named `names`).
 */
export function hold(r: JobRecord, needIds: readonly string[], names: readonly string[]): void {
  const at = r.job.createdAt ?? new Date().toISOString();
  r.job.state = S.JOB_STATE_WAITING;
  r.job.timeline = [{ state: S.JOB_STATE_WAITING, at, attempt: 0, reason: 'submitted' }];
  r.job.waitingReason = `needs: ${names.join(', ')}`;
  r.needs = [...needIds];
  r.held = true;
}

/** Its needs let it run: QUEUED. False when it is no longer held (someone decided first). */
export function release(r: JobRecord, reason: string, now: Date): boolean {
  if (!r.held || r.job.state !== S.JOB_STATE_WAITING) return false;
  delete r.held;
  transition(r.job, S.JOB_STATE_QUEUED, now, reason);
  return true;
}

/** A need ended without letting it run: SKIPPED, for good. False when it is no longer held. */
export function skip(r: JobRecord, reason: string, now: Date): boolean {
  if (!r.held || r.job.state !== S.JOB_STATE_WAITING) return false;
  delete r.held;
  transition(r.job, S.JOB_STATE_SKIPPED, now, reason);
  return true;
}
