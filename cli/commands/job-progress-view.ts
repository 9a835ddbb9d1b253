/** What `jobs get` shows of a job's progress report: one summary line, and its annotations. */
import { AnnotationKind, type Job } from '../../proto/gen/runmesh/v1/job.js';
import { table } from '../format.js';

const KIND_NAMES: Record<AnnotationKind, string> = {
  [AnnotationKind.ANNOTATION_KIND_UNSPECIFIED]: '?',
  [AnnotationKind.ANNOTATION_KIND_NOTICE]: 'notice',
  [AnnotationKind.ANNOTATION_KIND_WARNING]: 'warning',
  [AnnotationKind.ANNOTATION_KIND_ERROR]: 'error',
  [AnnotationKind.ANNOTATION_KIND_GROUP_START]: 'group',
  [AnnotationKind.ANNOTATION_KIND_GROUP_END]: 'endgroup',
  [AnnotationKind.UNRECOGNIZED]: '?',
};

/** "40% compiling", naming the attempt when it is not the job's latest; undefined when nothing was reported. */
export function progressLine(job: Job): string | undefined {
  const p = job.progress;
  if (!p) return undefined;
  const parts = [p.percent !== undefined ? `${p.percent}%` : '', p.text];
  if (p.attempt !== job.attempt) parts.push(`(attempt ${p.attempt})`);
  const line = parts.filter(Boolean).join(' ');
  return line || undefined;
}

/** Notices, warnings and errors (groups only fold the log: they are counted), with the rest dropped; undefined when none. */
export function annotationsTable(job: Job): string | undefined {
  const notes = job.annotations.filter(
    (a) => a.kind !== AnnotationKind.ANNOTATION_KIND_GROUP_START && a.kind !== AnnotationKind.ANNOTATION_KIND_GROUP_END,
  );
  const groups = job.annotations.filter((a) => a.kind === AnnotationKind.ANNOTATION_KIND_GROUP_START).length;
  const dropped = job.progress?.droppedAnnotations ?? 0;
  if (notes.length === 0 && groups === 0 && dropped === 0) return undefined;
  const rows = notes.map((a) => [KIND_NAMES[a.kind] ?? '?', a.fromFile ? 'file' : `#${a.seq}`, a.text]);
  const lines = rows.length > 0 ? [table(['KIND', 'WHERE', 'TEXT'], rows)] : [];
  if (groups > 0) lines.push(`${groups} log group${groups === 1 ? '' : 's'}`);
  if (dropped > 0) lines.push(`${dropped} more dropped (over the limit of 100 per attempt)`);
  return lines.join('\n');
}
