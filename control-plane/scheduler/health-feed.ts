/**
 * Feeds the router's health tracker from job transitions, whichever peer or
 * code path caused them: dispatch latency when an attempt starts running,
 * infrastructure failures (could not start, agent lost, disk full) when one ends: never
 * a failure the job caused (its exit code, a timeout, NOT_RUNNABLE).
 */
import { JobState, type Job, type TimelineEntry } from '../../proto/gen/runmesh/v1/job.js';
import type { HealthTracker } from '../../routing/index.js';
import type { Versioned } from '../jobs/repo.js';
import { INFRASTRUCTURE_FAILURES as INFRA } from '../jobs/retry-policy.js';
import { isTerminal } from '../jobs/state.js';

export class HealthFeed {
  /** Timeline length seen per live job, so a rewrite without a transition is not counted twice. */
  private readonly seen = new Map<string, number>();

  constructor(private readonly health: HealthTracker) {}

  observe(v: Versioned): void {
    const job = v.record.job;
    const before = this.seen.get(job.id) ?? 0;
    if (isTerminal(job.state)) this.seen.delete(job.id);
    else this.seen.set(job.id, job.timeline.length);
    // Attempts whose end an earlier entry already recorded.
    const ended = new Set(job.timeline.slice(0, before).flatMap((e) => (endsAttempt(e, job) ? [e.attempt] : [])));
    for (const entry of job.timeline.slice(before)) {
      const attempt = job.attempts.find((a) => a.number === entry.attempt);
      if (!attempt?.agent) continue;
      const now = Date.parse(entry.at ?? '') || Date.now();
      if (entry.state === JobState.JOB_STATE_RUNNING && attempt.assignedAt) {
        this.health.recordDispatch(attempt.agent, Math.max(0, now - Date.parse(attempt.assignedAt)), now);
      } else if (entry.state !== JobState.JOB_STATE_ASSIGNED && attempt.finishedAt && before > 0 && !ended.has(entry.attempt)) {
        // Once per attempt: the entries after its end that still carry its number (a backoff's
        // end, QUEUED again) are not more results of it.
        ended.add(entry.attempt);
        this.health.recordResult(attempt.agent, INFRA.has(attempt.failure), now);
      }
    }
  }
}

/** True for the entry that ended its attempt: the first one after the attempt started whose state is not ASSIGNED or RUNNING. */
function endsAttempt(e: TimelineEntry, job: Job): boolean {
  return (
    e.state !== JobState.JOB_STATE_ASSIGNED &&
    e.state !== JobState.JOB_STATE_RUNNING &&
    job.attempts.some((a) => a.number === e.attempt && a.finishedAt)
  );
}
