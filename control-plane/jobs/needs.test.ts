import { describe, expect, it } from 'vitest';
import { JobSpec, JobState } from '../../proto/gen/runmesh/v1/job.js';
import { promote, requestCancel } from './lifecycle.js';
import { decide, hold, release, skip, type NeedOutcome } from './needs.js';
import { queuedRecord, type JobRecord } from './record.js';
import { validateSpec } from './validate.js';

describe("a held job's decision", () => {
  const S = JobState;
  const need = (name: string, state: JobState | undefined, allowFailure = false): NeedOutcome => ({ id: name, name, state, allowFailure });
  const never = (): boolean => false;

  it('waits while a need runs, runs once all succeeded', () => {
    expect(decide([need('a', S.JOB_STATE_SUCCEEDED), need('b', S.JOB_STATE_RUNNING)], never)).toEqual({ kind: 'wait' });
    expect(decide([need('a', S.JOB_STATE_SUCCEEDED), need('b', S.JOB_STATE_SUCCEEDED)], never)).toEqual({
      kind: 'release',
      reason: 'needs done',
    });
  });

  it('is skipped as soon as one need fails, and runs past a need that may fail', () => {
    expect(decide([need('a', S.JOB_STATE_FAILED), need('b', S.JOB_STATE_RUNNING)], never)).toEqual({
      kind: 'skip',
      reason: 'need a failed',
    });
    expect(decide([need('a', S.JOB_STATE_DEAD, true), need('b', S.JOB_STATE_SUCCEEDED)], never)).toEqual({
      kind: 'release',
      reason: 'needs done (allowed to fail: a)',
    });
  });

  it('is skipped after a cancelled or skipped need, even one that may fail', () => {
    expect(decide([need('a', S.JOB_STATE_CANCELLED, true)], never)).toEqual({ kind: 'skip', reason: 'need a cancelled' });
    expect(decide([need('a', S.JOB_STATE_SKIPPED)], never)).toEqual({ kind: 'skip', reason: 'need a skipped' });
  });

  it('waits for a need not stored yet, and is skipped once it is gone for good', () => {
    expect(decide([need('a', undefined)], never)).toEqual({ kind: 'wait' });
    expect(decide([need('a', undefined)], () => true)).toEqual({ kind: 'skip', reason: 'need a no longer stored' });
  });
});

describe('a held record', () => {
  const now = new Date('2026-12-05T00:00:00Z');
  const held = (): JobRecord => {
    const r = queuedRecord('j_2', validateSpec(JobSpec.fromPartial({ name: 'test', argv: ['true'], needs: ['build'] })), now, 1);
    hold(r, ['j_1'], ['build']);
    return r;
  };

  it('waits from its submission for its needs, and no clock queues it', () => {
    const r = held();
    expect([r.job.state, r.job.waitingReason, r.job.timeline.map((e) => e.state), r.needs]).toEqual([
      JobState.JOB_STATE_WAITING,
      'needs: build',
      [JobState.JOB_STATE_WAITING],
      ['j_1'],
    ]);
    expect(promote(r, new Date(now.getTime() + 3_600_000))).toBe(false);
  });

  it('is released or skipped once, and not after', () => {
    const a = held();
    expect(release(a, 'needs done', now)).toBe(true);
    expect([a.job.state, a.held, release(a, 'needs done', now), skip(a, 'x', now)]).toEqual([
      JobState.JOB_STATE_QUEUED,
      undefined,
      false,
      false,
    ]);
    const b = held();
    expect(skip(b, 'need build failed', now)).toBe(true);
    expect([b.job.state, b.job.timeline.at(-1)?.reason, b.job.waitingReason]).toEqual([
      JobState.JOB_STATE_SKIPPED,
      'need build failed',
      '',
    ]);
  });

  it('is held no more once cancelled', () => {
    const r = held();
    expect(requestCancel(r, 'stop', now)).toBe('done');
    expect([r.job.state, r.held]).toEqual([JobState.JOB_STATE_CANCELLED, undefined]);
  });
});
