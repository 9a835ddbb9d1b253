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

/**
 * A job it (transitively) needs was retried: a SKIPPED job is held again
 * (WAITING), and the leader decides it once its needs end, as at first.
 * False when it is not a skipped pipeline job.
 */
export function unskip(r: JobRecord, reason: string, now: Date): boolean {
  if (r.job.state !== S.JOB_STATE_SKIPPED || !r.needs?.length) return false;
  r.held = true;
  transition(r.job, S.JOB_STATE_WAITING, now, reason);
  r.job.waitingReason = `needs: ${r.job.spec.needs.join(', ')}`;
  return true;
}

/** The jobs of `records` that need `id`, directly or through others. */
export function dependentsOf(id: string, records: readonly JobRecord[]): Set<string> {
  const out = new Set<string>();
  const next = [id];
  for (let n = next.pop(); n !== undefined; n = next.pop()) {
    for (const r of records) {
      if (out.has(r.job.id) || !r.needs?.includes(n)) continue;
      out.add(r.job.id);
      next.push(r.job.id);
    }
  }
  return out;
}

/** A need ended without letting it run: SKIPPED, for good (until a need is retried: unskip). False when it is no longer held. */
export function skip(r: JobRecord, reason: string, now: Date): boolean {
  if (!r.held || r.job.state !== S.JOB_STATE_WAITING) return false;
  delete r.held;
  transition(r.job, S.JOB_STATE_SKIPPED, now, reason);
  return true;
}
