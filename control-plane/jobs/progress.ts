/**
 * An attempt's progress report (JobProgress from its agent) on the job's
 * record: checked against the limits the agent keeps to, and stored as the
 * job's `progress` and `annotations`, replacing the last report.
 */
import type { JobProgress } from '../../proto/gen/runmesh/v1/agent.js';
import { AnnotationKind } from '../../proto/gen/runmesh/v1/job.js';
import type { JobRecord } from './record.js';

export const MAX_PROGRESS_TEXT_BYTES = 1024;
export const MAX_ANNOTATIONS = 100;
export const MAX_ANNOTATION_TEXT_BYTES = 16 * 1024;
const KINDS: ReadonlySet<AnnotationKind> = new Set([
  AnnotationKind.ANNOTATION_KIND_NOTICE,
  AnnotationKind.ANNOTATION_KIND_WARNING,
  AnnotationKind.ANNOTATION_KIND_ERROR,
  AnnotationKind.ANNOTATION_KIND_GROUP_START,
  AnnotationKind.ANNOTATION_KIND_GROUP_END,
]);

/** What is wrong with a report, naming the field; undefined when it is within the limits. */
export function progressProblem(p: JobProgress): string | undefined {
  if (p.percent !== undefined && p.percent > 100) return `job_progress.percent: ${p.percent} is over 100`;
  if (Buffer.byteLength(p.text) > MAX_PROGRESS_TEXT_BYTES) return `job_progress.text: over ${MAX_PROGRESS_TEXT_BYTES} bytes`;
  if (p.annotations.length > MAX_ANNOTATIONS) return `job_progress.annotations: ${p.annotations.length} is over ${MAX_ANNOTATIONS}`;
  let total = 0;
  for (const [i, a] of p.annotations.entries()) {
    if (!KINDS.has(a.kind)) return `job_progress.annotations[${i}].kind: ${a.kind} is not an annotation kind`;
    const bytes = Buffer.byteLength(a.text);
    if (bytes > MAX_PROGRESS_TEXT_BYTES) return `job_progress.annotations[${i}].text: over ${MAX_PROGRESS_TEXT_BYTES} bytes`;
    total += bytes;
  }
  if (total > MAX_ANNOTATION_TEXT_BYTES) return `job_progress.annotations: over ${MAX_ANNOTATION_TEXT_BYTES} bytes of text`;
  return undefined;
}

/**
 * Stores `p` on the job if it is about the job's current attempt; false when
 * it is stale, or says nothing new (nothing to write). The caller has checked
 * that the reporting agent holds that attempt.
 */
export function recordProgress(r: JobRecord, p: JobProgress, now: Date): boolean {
  if (r.job.attempt !== p.attempt) return false;
  const before = r.job.progress;
  const same =
    before?.attempt === p.attempt &&
    before.percent === p.percent &&
    before.text === p.text &&
    before.droppedAnnotations === p.droppedAnnotations &&
    sameAnnotations(r.job.annotations, p.annotations);
  if (same) return false;
  r.job.progress = {
    attempt: p.attempt,
    percent: p.percent,
    text: p.text,
    updatedAt: now.toISOString(),
    droppedAnnotations: p.droppedAnnotations,
  };
  r.job.annotations = p.annotations;
  return true;
}

function sameAnnotations(a: JobProgress['annotations'], b: JobProgress['annotations']): boolean {
  return (
    a.length === b.length &&
    a.every((x, i) => {
      const y = b[i];
      return y && x.kind === y.kind && x.text === y.text && x.seq === y.seq && x.offset === y.offset && x.fromFile === y.fromFile;
    })
  );
}
