import { describe, expect, it } from 'vitest';
import { FailureCategory, JobSpec, JobState } from '../../proto/gen/runmesh/v1/job.js';
import { assign, countedAttempts, finish, lost, started, undelivered } from './lifecycle.js';
import { queuedRecord, type JobRecord } from './record.js';
import { validateSpec } from './validate.js';

const S = JobState;
const now = new Date('2026-12-01T12:00:00Z');

const queued = (maxAttempts: number): JobRecord =>
  queuedRecord('j_0000000000lifecycle', validateSpec(JobSpec.fromPartial({ argv: ['true'], maxAttempts })), now, 1);

const ok = { exitCode: 0, failure: FailureCategory.FAILURE_CATEGORY_UNSPECIFIED, message: '', logRecords: 0 };

describe('an assignment that never reached its agent', () => {
  it('queues the job again at once without using up its only attempt', () => {
    const r = queued(1);
    expect(assign(r, 'a1', now)).toBe(true);
    expect(undelivered(r, 1, 'agent a1 was gone', now)).toBe(true);
    expect(r.job.state).toBe(S.JOB_STATE_QUEUED);
    expect(r.job.attempts[0]).toMatchObject({ failure: FailureCategory.FAILURE_CATEGORY_NOT_DELIVERED, message: 'agent a1 was gone' });
    expect(countedAttempts(r)).toBe(0);
    // The next placement is attempt 2 and may still succeed.
    expect(assign(r, 'a2', now)).toBe(true);
    expect(r.job.attempt).toBe(2);
    expect(finish(r, 2, ok, now)).toBe(true);
    expect(r.job.state).toBe(S.JOB_STATE_SUCCEEDED);
    expect(r.job.timeline.map((t) => t.state)).toEqual([
      S.JOB_STATE_QUEUED,
      S.JOB_STATE_ASSIGNED,
      S.JOB_STATE_QUEUED,
      S.JOB_STATE_ASSIGNED,
      S.JOB_STATE_SUCCEEDED,
    ]);
  });

  it('does not apply once the agent reported the attempt, or to another attempt', () => {
    const r = queued(1);
    assign(r, 'a1', now);
    expect(undelivered(r, 2, 'stale', now)).toBe(false);
    expect(started(r, 1, now)).toBe(true);
    expect(undelivered(r, 1, 'too late', now)).toBe(false);
    expect(r.job.state).toBe(S.JOB_STATE_RUNNING);
  });

  it('differs from a lost agent, which uses up the attempt', () => {
    const r = queued(1);
    assign(r, 'a1', now);
    expect(lost(r, 1, 'agent a1 lost', now)).toBe(true);
    expect(r.job.state).toBe(S.JOB_STATE_FAILED);
    expect(countedAttempts(r)).toBe(1);
  });
});
