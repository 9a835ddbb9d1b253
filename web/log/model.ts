/**
 * A log as lines, built incrementally as text arrives: text is cut into lines
 * (a line without its newline yet stays open); colours carry from one line to
 * the next. Each stdout line remembers where it starts in the attempt's log
 * (record seq, byte offset in that record), which is how the agent's group
 * boundaries (annotations GROUP_START/GROUP_END, see docs/protocol.md) find
 * their lines: `foldGroups`. The text itself is never searched for
 * `::group`: the agent has parsed it (stop-commands and all), the page only
 * folds where it says.
 */
import { parseLine, PLAIN, type Pen, type Run } from './ansi.js';

export interface Line {
  /** 1-based, as in the link #L<n>. */
  n: number;
  runs: Run[];
  stream: 'stdout' | 'stderr';
  /** Where the line starts in the log (stdout lines only). */
  at?: { seq: number; offset: number };
}

export interface Group {
  name: string;
  /** The line that opened it (1-based). */
  line: number;
  /** Its end was seen: shown collapsed until opened. */
  ended: boolean;
}

/** A group boundary from the job's annotations. */
export interface GroupMark {
  kind: 'group_start' | 'group_end';
  text: string;
  seq: number;
  offset: number;
}

interface OpenLine {
  text: string;
  at: { seq: number; offset: number };
}

export class LogModel {
  readonly lines: Line[] = [];
  private open: Record<'stdout' | 'stderr', OpenLine | undefined> = { stdout: undefined, stderr: undefined };
  private pen: Pen = PLAIN;
  /** The attempt ended: every line is here. */
  ended = false;

  /** Adds the text of record `seq` of one stream; returns true when some line was completed. */
  append(stream: 'stdout' | 'stderr', text: string, seq = 0): boolean {
    const parts = text.split('\n');
    let bytes = 0;
    parts.forEach((part, i) => {
      const newline = i < parts.length - 1;
      if (part === '' && !newline) return; // nothing of the next line yet: it starts in a later record
      const open = (this.open[stream] ??= { text: '', at: { seq, offset: bytes } });
      open.text += part;
      bytes += utf8Length(part);
      if (!newline) return;
      bytes += 1;
      this.add(stream, open.text.replace(/\r$/, ''), open.at);
      this.open[stream] = undefined;
    });
    return parts.length > 1;
  }

  /** The attempt ended: what is left without a newline becomes a line. */
  finish(): void {
    for (const s of ['stdout', 'stderr'] as const) {
      const open = this.open[s];
      if (open) this.add(s, open.text, open.at);
      this.open[s] = undefined;
    }
    this.ended = true;
  }

  private add(stream: 'stdout' | 'stderr', text: string, at: OpenLine['at']): void {
    const { runs, pen } = parseLine(text, this.pen);
    this.pen = pen;
    this.lines.push({ n: this.lines.length + 1, runs, stream, ...(stream === 'stdout' ? { at } : {}) });
  }
}

/**
 * The log's groups from the agent's marks: each top-level group runs from
 * its `::group` line to its `::endgroup` line (nested groups fold with their
 * outermost one). A group whose end is not among the lines yet runs to the
 * last line: open while the log grows; ended once the attempt has (the agent
 * closes a forgotten group where stdout ends). `of[i]` is the group of line
 * i+1, or -1.
 */
export function foldGroups(lines: readonly Line[], marks: readonly GroupMark[], ended: boolean): { groups: Group[]; of: number[] } {
  const byPlace = new Map<string, number>();
  for (const l of lines) if (l.at) byPlace.set(`${l.at.seq}:${l.at.offset}`, l.n - 1);
  const groups: Group[] = [];
  const of = lines.map(() => -1);
  const span = (from: number, to: number): void => {
    for (let i = from; i <= to; i++) of[i] = groups.length - 1;
  };
  let depth = 0;
  let start = -1;
  for (const m of marks) {
    const at = byPlace.get(`${m.seq}:${m.offset}`);
    if (m.kind === 'group_start') {
      if (depth++ > 0) continue;
      if (at === undefined) return { groups, of }; // its line has not arrived yet, nor anything after it
      start = at;
      groups.push({ name: m.text || 'group', line: at + 1, ended: false });
      continue;
    }
    if (depth === 0 || --depth > 0) continue;
    if (at === undefined && !ended) break;
    groups[groups.length - 1]!.ended = true;
    span(start, at ?? lines.length - 1);
    start = -1;
  }
  if (start >= 0) span(start, lines.length - 1);
  return { groups, of };
}

/** Bytes of `s` in UTF-8 (a surrogate pair is one 4-byte character). */
function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}
