/**
 * What one attempt has reported so far: its latest progress and its
 * annotations, within fixed bounds (MAX_ANNOTATIONS, MAX_ANNOTATION_BYTES of
 * text; what does not fit is only counted). Groups nest up to MAX_DEPTH; a
 * group start is kept only with room for its end as well, so every kept start
 * gets its end, and the groups still open when the attempt ends are closed
 * there (`closeOpenGroups`). Groups come from stdout only: a line of the
 * progress file is in no log record, so a group there would have nothing to fold.
 */
import type { JobProgress } from '../../proto/gen/runmesh/v1/agent.js';
import { type Annotation, AnnotationKind } from '../../proto/gen/runmesh/v1/job.js';
import type { Command, Found } from './commands.js';

export const MAX_ANNOTATIONS = 100;
export const MAX_ANNOTATION_BYTES = 16 * 1024;
export const MAX_DEPTH = 32;

const NOTE_KINDS = {
  notice: AnnotationKind.ANNOTATION_KIND_NOTICE,
  warning: AnnotationKind.ANNOTATION_KIND_WARNING,
  error: AnnotationKind.ANNOTATION_KIND_ERROR,
} as const;

export class ProgressReport {
  private percent: number | undefined;
  private text = '';
  private readonly annotations: Annotation[] = [];
  private dropped = 0;
  private textBytes = 0;
  /** Open groups, innermost last: whether each was kept (its end is then owed). */
  private readonly open: boolean[] = [];
  /** Whether anything changed since the last `take`. */
  private dirty = false;

  /** Takes a command from stdout (with its place in the log) or from the progress file (`at` undefined). */
  add(command: Command, at?: Pick<Found, 'seq' | 'offset'>): void {
    switch (command.kind) {
      case 'progress':
        if (this.percent === command.percent && this.text === command.text) return;
        this.percent = command.percent;
        this.text = command.text;
        this.dirty = true;
        return;
      case 'group':
        if (at) this.openGroup(command.text, at);
        return;
      case 'endgroup':
        if (at) this.closeGroup(at);
        return;
      default:
        this.note({ kind: NOTE_KINDS[command.kind], text: command.text, seq: at?.seq ?? 0, offset: at?.offset ?? 0, fromFile: !at });
    }
  }

  /** The attempt's stdout ended at `at`: every group still open ends there. */
  closeOpenGroups(at: Pick<Found, 'seq' | 'offset'>): void {
    while (this.open.length > 0) this.closeGroup(at);
  }

  /** The state to send if it changed since the last call, else undefined. */
  take(jobId: string, attempt: number): JobProgress | undefined {
    if (!this.dirty) return undefined;
    this.dirty = false;
    return this.snapshot(jobId, attempt);
  }

  /** The whole state, changed or not. */
  snapshot(jobId: string, attempt: number): JobProgress {
    return {
      jobId,
      attempt,
      percent: this.percent,
      text: this.text,
      annotations: [...this.annotations],
      droppedAnnotations: this.dropped,
    };
  }

  /** Whether the job reported anything at all. */
  get empty(): boolean {
    return this.percent === undefined && this.annotations.length === 0 && this.dropped === 0;
  }

  private openGroup(text: string, at: Pick<Found, 'seq' | 'offset'>): void {
    const keep = this.open.length < MAX_DEPTH && this.fits(2, text);
    this.open.push(keep);
    if (keep) this.push({ kind: AnnotationKind.ANNOTATION_KIND_GROUP_START, text, seq: at.seq, offset: at.offset, fromFile: false });
    else this.drop();
  }

  private closeGroup(at: Pick<Found, 'seq' | 'offset'>): void {
    if (this.open.length === 0) return; // an end without a start is only text
    if (this.open.pop())
      this.push({ kind: AnnotationKind.ANNOTATION_KIND_GROUP_END, text: '', seq: at.seq, offset: at.offset, fromFile: false });
  }

  private note(a: Annotation): void {
    if (this.fits(1, a.text)) this.push(a);
    else this.drop();
  }

  /** Room for `slots` more annotations (a start counts its end) and for `text`, besides the ends owed to open groups. */
  private fits(slots: number, text: string): boolean {
    const owed = this.open.filter(Boolean).length;
    return this.annotations.length + owed + slots <= MAX_ANNOTATIONS && this.textBytes + Buffer.byteLength(text) <= MAX_ANNOTATION_BYTES;
  }

  private push(a: Annotation): void {
    this.annotations.push(a);
    this.textBytes += Buffer.byteLength(a.text);
    this.dirty = true;
  }

  private drop(): void {
    this.dropped++;
    this.dirty = true;
  }
}
