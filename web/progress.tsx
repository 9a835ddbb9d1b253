/** A job's progress as the page shows it: a bar (with the percentage and the job's text), and its annotations. */
import type { AnnotationView, ProgressView } from '../control-plane/console/wire.js';

/** Nothing until the job printed a `::progress N`. */
export function ProgressBar({ progress, compact = false }: { progress: ProgressView | undefined; compact?: boolean }) {
  if (progress?.percent === undefined) return null;
  const label = `${progress.percent}%${progress.text ? ` ${progress.text}` : ''}`;
  return (
    <span class={`progress ${compact ? 'compact' : ''}`} data-testid="progress" title={label}>
      <span class="progress-track" role="progressbar" aria-valuemin={0} aria-valuemax={100} aria-valuenow={progress.percent}>
        <span class="progress-fill" style={{ width: `${progress.percent}%` }} />
      </span>
      {!compact && <span class="progress-label">{label}</span>}
    </span>
  );
}

/** Notices, warnings and errors, each linked to its line when it has one; groups fold the log instead. */
export function Annotations({ items, dropped }: { items: readonly AnnotationView[]; dropped: number }) {
  const notes = items.filter((a) => a.kind === 'notice' || a.kind === 'warning' || a.kind === 'error');
  if (notes.length === 0 && dropped === 0) return null;
  return (
    <ul class="annotations" data-testid="annotations">
      {notes.map((a, i) => (
        <li key={i} class={a.kind}>
          <span class={`pill ${a.kind}`}>{a.kind}</span> {a.text}
          {a.fromFile && <span class="muted"> (progress file)</span>}
        </li>
      ))}
      {dropped > 0 && <li class="muted">{dropped} more dropped (over the limit of 100 per attempt)</li>}
    </ul>
  );
}
