/**
 * A log as lines and groups, built incrementally as text arrives: text is cut
 * into lines (a line without its newline yet stays open), `::group name` opens
 * a collapsible group and `::endgroup` closes it (as GitHub Actions and
 * Woodpecker print them); colours carry from one line to the next.
 */
import { parseLine, PLAIN, type Pen, type Run } from './ansi.js';

export interface Line {
  /** 1-based, as in the link #L<n>. */
  n: number;
  runs: Run[];
  stream: 'stdout' | 'stderr';
  /** The group this line is in (index into groups), or -1. */
  group: number;
}

export interface Group {
  name: string;
  /** The line that opened it. */
  line: number;
  /** Its `::endgroup` was seen: shown collapsed until opened. */
  ended: boolean;
}

const GROUP = /^::group(?:::|\s+)(.*)$/;
const END_GROUP = /^::endgroup(?:::)?\s*$/;
// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;

export class LogModel {
  readonly lines: Line[] = [];
  readonly groups: Group[] = [];
  private open: Record<'stdout' | 'stderr', string> = { stdout: '', stderr: '' };
  private pen: Pen = PLAIN;
  private current = -1;

  /** Adds text of one stream; returns true when some line was completed. */
  append(stream: 'stdout' | 'stderr', text: string): boolean {
    const all = this.open[stream] + text;
    const parts = all.split('\n');
    this.open[stream] = parts.pop() ?? '';
    for (const p of parts) this.add(stream, p.replace(/\r$/, ''));
    return parts.length > 0;
  }

  /** The attempt ended: what is left without a newline becomes a line. */
  finish(): void {
    for (const s of ['stdout', 'stderr'] as const) {
      if (this.open[s]) this.add(s, this.open[s]);
      this.open[s] = '';
    }
  }

  private add(stream: 'stdout' | 'stderr', text: string): void {
    const bare = text.replace(ANSI, '');
    const opened = GROUP.exec(bare);
    if (opened) {
      this.groups.push({ name: opened[1]!.trim() || 'group', line: this.lines.length + 1, ended: false });
      this.current = this.groups.length - 1;
    }
    const { runs, pen } = parseLine(text, this.pen);
    this.pen = pen;
    this.lines.push({ n: this.lines.length + 1, runs, stream, group: this.current });
    if (END_GROUP.test(bare) && this.current >= 0) {
      this.groups[this.current]!.ended = true;
      this.current = -1;
    }
  }
}
