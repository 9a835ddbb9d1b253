import { describe, expect, it } from 'vitest';
import type { JobProgress } from '../../proto/gen/runmesh/v1/agent.js';
import { AnnotationKind, JobSpec, JobState } from '../../proto/gen/runmesh/v1/job.js';
import { progressProblem, recordProgress } from './progress.js';
import { queuedRecord, type ResolvedSpec } from './record.js';

const report = (o: Partial<JobProgress> = {}): JobProgress => ({
  jobId: 'j',
  attempt: 2,
  percent: 40,
  text: 'compiling',
  annotations: [{ kind: AnnotationKind.ANNOTATION_KIND_WARNING, text: 'slow disk', seq: 3, offset: 0, fromFile: false }],
  droppedAnnotations: 0,
  ...o,
});

function running(attempt: number) {
  const spec = JobSpec.fromPartial({ argv: ['true'], resources: { slots: 1 } }) as ResolvedSpec;
  const r = queuedRecord('j', spec, new Date(0), 1);
  r.job.state = JobState.JOB_STATE_RUNNING;
  r.job.attempt = attempt;
  return r;
}

describe('progress on the job record', () => {
  it('names the field of a report past the limits', () => {
    expect(progressProblem(report())).toBeUndefined();
    expect(progressProblem(report({ percent: 101 }))).toMatch(/^job_progress\.percent/);
    expect(progressProblem(report({ text: 'x'.repeat(1025) }))).toMatch(/^job_progress\.text/);
    const many = Array.from({ length: 101 }, () => report().annotations[0]!);
    expect(progressProblem(report({ annotations: many }))).toMatch(/^job_progress\.annotations: 101/);
    const big = Array.from({ length: 17 }, () => ({ ...report().annotations[0]!, text: 'y'.repeat(1000) }));
    expect(progressProblem(report({ annotations: big }))).toMatch(/16384 bytes of text/);
    const odd = [{ ...report().annotations[0]!, kind: 42 as AnnotationKind }];
    expect(progressProblem(report({ annotations: odd }))).toMatch(/^job_progress\.annotations\[0\]\.kind/);
  });

  it("stores the current attempt's report, ignores a stale attempt's and one that says nothing new", () => {
    const r = running(2);
    expect(recordProgress(r, report({ attempt: 1 }), new Date(1000))).toBe(false);
    expect(r.job.progress).toBeUndefined();
    expect(recordProgress(r, report(), new Date(1000))).toBe(true);
    expect(r.job.progress).toMatchObject({ attempt: 2, percent: 40, text: 'compiling' });
    expect(recordProgress(r, report(), new Date(2000))).toBe(false);
    expect(recordProgress(r, report({ percent: 41 }), new Date(2000))).toBe(true);
  });
});
