import { describe, expect, it } from 'vitest';
import { FailureCategory, JobSpec, JobState } from '../../proto/gen/runmesh/v1/job.js';
import { assign, countedAttempts, finish, lost, promote, started, undelivered } from './lifecycle.js';
import { decodeRecord, encodeRecord, queuedRecord, type JobRecord } from './record.js';
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

describe('an attempt killed for going over its memory limit', () => {
  const oom = {
    exitCode: -1,
    failure: FailureCategory.FAILURE_CATEGORY_OUT_OF_MEMORY,
    message: 'killed by the kernel: over its memory limit of 64 MiB',
    logRecords: 0,
    usage: { peakMemoryBytes: 67_108_864n, cpuSeconds: 0.42 },
  };

  it('is the job’s own failure: retried while attempts remain, then FAILED (DEAD with retries), keeping the usage', () => {
    const r = queued(2);
    assign(r, 'a1', now);
    expect(finish(r, 1, oom, now)).toBe(true);
    expect(r.job.state).toBe(S.JOB_STATE_WAITING);
    expect(r.job.attempts[0]).toMatchObject({ state: S.JOB_STATE_FAILED, failure: oom.failure, usage: oom.usage });
    expect(r.job.timeline.at(-1)?.reason).toBe('attempt 1 out_of_memory: killed by the kernel: over its memory limit of 64 MiB');
    expect(promote(r, new Date(now.getTime() + 120_000))).toBe(true);
    assign(r, 'a2', now);
    expect(finish(r, 2, oom, now)).toBe(true);
    expect(r.job.state).toBe(S.JOB_STATE_DEAD);
    expect(r.job.failure).toBe(FailureCategory.FAILURE_CATEGORY_OUT_OF_MEMORY);

    const once = queued(1);
    assign(once, 'a1', now);
    finish(once, 1, oom, now);
    expect(once.job.state).toBe(S.JOB_STATE_FAILED);
  });

  it('stores the usage a successful attempt reports, and none when the agent measured nothing', () => {
    const r = queued(1);
    assign(r, 'a1', now);
    finish(r, 1, { ...ok, usage: { peakMemoryBytes: 5_000_000_000n, cpuSeconds: 12.5 } }, now);
    expect(r.job.attempts[0]?.usage).toEqual({ peakMemoryBytes: 5_000_000_000n, cpuSeconds: 12.5 });
    // Stored and read back whole: past 4 GiB, and with a fraction of a second.
    expect(decodeRecord(encodeRecord(r)).job.attempts[0]?.usage).toEqual({ peakMemoryBytes: 5_000_000_000n, cpuSeconds: 12.5 });
    const bare = queued(1);
    assign(bare, 'a1', now);
    finish(bare, 1, ok, now);
    expect(bare.job.attempts[0]?.usage).toBeUndefined();
  });
});
