import { describe, expect, it } from 'vitest';
import { AnnotationKind, Job, JobState } from '../../proto/gen/runmesh/v1/job.js';
import { jobPage } from './job-view.js';

describe('jobs get: progress and annotations', () => {
  it('shows the progress line, the notes, the groups counted and what was dropped', () => {
    const job = Job.fromPartial({
      id: 'j',
      state: JobState.JOB_STATE_RUNNING,
      attempt: 2,
      progress: { attempt: 2, percent: 40, text: 'compiling', droppedAnnotations: 3 },
      annotations: [
        { kind: AnnotationKind.ANNOTATION_KIND_GROUP_START, text: 'build', seq: 0 },
        { kind: AnnotationKind.ANNOTATION_KIND_WARNING, text: 'slow disk', seq: 3 },
        { kind: AnnotationKind.ANNOTATION_KIND_GROUP_END, seq: 4 },
        { kind: AnnotationKind.ANNOTATION_KIND_NOTICE, text: 'from a file', fromFile: true },
      ],
    });
    const page = jobPage(job, Date.now());
    expect(page).toMatch(/progress: +40% compiling\n/);
    expect(page).toMatch(/warning +#3 +slow disk/);
    expect(page).toMatch(/notice +file +from a file/);
    expect(page).toContain('1 log group\n');
    expect(page).toContain('3 more dropped');
    // An earlier attempt's report says which attempt it is.
    expect(jobPage({ ...job, attempt: 3 }, Date.now())).toMatch(/progress: +40% compiling \(attempt 2\)/);
  });
});
