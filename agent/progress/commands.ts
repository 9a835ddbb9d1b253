/**
 * Finds the workflow commands a job prints (GitHub Actions style) in a byte
 * stream read in chunks of any size:
 *
 *   ::progress 40 [text]      ::notice text      ::warning text      ::error text
 *   ::group name              ::endgroup         ::stop-commands::TOKEN  ...  ::TOKEN::
 *
 * The name may also be followed by `::` (`::notice::text`, `::endgroup::`).
 * A command is a whole line that starts with `::` (a trailing CR is dropped);
 * anything else, a malformed command included, is text and yields nothing.
 * After `::stop-commands::TOKEN` nothing is a command until a line that is
 * exactly `::TOKEN::`, so a job can print arbitrary text safely.
 *
 * The parser never changes the bytes (the log keeps them as printed): it only
 * reports where each command line starts, as (record seq, offset in that
 * record). What it yields is the same however the stream is cut (the tests
 * check every cut). Memory is bounded: only a line that may be a command is
 * carried across chunks, and only its first MAX_LINE bytes (a longer one is
 * still a command, its text cut; see capText).
 */

export type NoteKind = 'notice' | 'warning' | 'error';

export type Command =
  | { readonly kind: 'progress'; readonly percent: number; readonly text: string }
  | { readonly kind: NoteKind; readonly text: string }
  | { readonly kind: 'group'; readonly text: string }
  | { readonly kind: 'endgroup' };

/** A command and where its line starts. */
export interface Found {
  readonly command: Command;
  readonly seq: number;
  readonly offset: number;
}

/** Bytes of a possible command line kept; the rest of a longer line is dropped (its text is cut at MAX_TEXT anyway). */
export const MAX_LINE = 4096;
/** Bytes of text (UTF-8) a command keeps. */
export const MAX_TEXT = 1024;

const COLON = 0x3a;
const NEWLINE = 0x0a;
const NEWLINE_COLON = Buffer.from('\n:');
const COMMAND = /^::([a-z][a-z-]*)(?:(?:::| )([\s\S]*))?$/;
const PROGRESS = /^(\d{1,3})%?(?:\s+([\s\S]*))?$/;
const TOKEN = /^\S{1,256}$/;

type LineState = 'start' | 'carry' | 'skip';

export class CommandParser {
  private state: LineState = 'start';
  private parts: Buffer[] = [];
  private kept = 0;
  private cut = false;
  private lineSeq = 0;
  private lineOffset = 0;
  private stopToken: string | undefined;

  /**
   * Takes the next chunk of the stream (record `seq`); returns the commands
   * whose lines it completed. Text lines cost one native search: only a line
   * that starts with `:` is looked at byte by byte.
   */
  push(data: Buffer, seq: number): Found[] {
    const found: Found[] = [];
    let pos = 0;
    while (pos < data.length) {
      if (this.state === 'start') {
        if (data[pos] !== COLON) {
          this.state = 'skip';
          continue;
        }
        this.lineSeq = seq;
        this.lineOffset = pos;
        this.state = 'carry';
      }
      if (this.state === 'skip') {
        const next = data.indexOf(NEWLINE_COLON, pos);
        if (next < 0) {
          if (data[data.length - 1] === NEWLINE) this.state = 'start';
          break;
        }
        pos = next + 1;
        this.state = 'start';
        continue;
      }
      const nl = data.indexOf(NEWLINE, pos);
      const end = nl < 0 ? data.length : nl;
      if (nl >= 0 && this.kept === 0) {
        // The whole line is in this chunk (the common case): read in place, nothing copied.
        const command = this.interpret(data.subarray(pos, Math.min(end, pos + MAX_LINE)), end - pos > MAX_LINE);
        if (command) found.push({ command, seq, offset: pos });
        this.reset('start');
        pos = nl + 1;
        continue;
      }
      this.carry(data.subarray(pos, end));
      if (nl < 0) break;
      this.endLine(found);
      pos = nl + 1;
    }
    return found;
  }

  /** The stream ended: a last line without a newline counts as a line. */
  end(): Found[] {
    const found: Found[] = [];
    if (this.state !== 'start') this.endLine(found);
    return found;
  }

  private carry(bytes: Buffer): void {
    // The second byte must be a colon too; it may come in the next chunk.
    const second = this.kept === 0 ? bytes[1] : this.kept === 1 ? bytes[0] : COLON;
    if (second !== undefined && second !== COLON) {
      this.reset('skip');
      return;
    }
    const room = MAX_LINE - this.kept;
    if (bytes.length > room) this.cut = true;
    const take = bytes.subarray(0, Math.max(0, room));
    if (take.length === 0) return;
    this.parts.push(Buffer.from(take)); // a copy: the chunk's buffer is not pinned by a line we carry
    this.kept += take.length;
  }

  private endLine(found: Found[]): void {
    if (this.state === 'carry') {
      const command = this.interpret(Buffer.concat(this.parts, this.kept), this.cut);
      if (command) found.push({ command, seq: this.lineSeq, offset: this.lineOffset });
    }
    this.reset('start');
  }

  private reset(state: LineState): void {
    this.state = state;
    this.parts = [];
    this.kept = 0;
    this.cut = false;
  }

  /** The command a line (its first MAX_LINE bytes; `cut` when it was longer) holds, if any; a line of one colon or none is text. */
  private interpret(line: Buffer, cut: boolean): Command | undefined {
    if (line[1] !== COLON) return undefined;
    let text = line.toString('utf8');
    if (!cut && text.endsWith('\r')) text = text.slice(0, -1);
    if (this.stopToken !== undefined) {
      if (!cut && text === `::${this.stopToken}::`) this.stopToken = undefined;
      return undefined;
    }
    const m = COMMAND.exec(text);
    if (!m) return undefined;
    return this.command(m[1] ?? '', m[2], text.startsWith(`::${m[1]}::`), cut);
  }

  private command(name: string, rest: string | undefined, colons: boolean, cut: boolean): Command | undefined {
    switch (name) {
      case 'progress': {
        const p = PROGRESS.exec((rest ?? '').trim());
        const percent = Number(p?.[1]);
        if (!p || percent > 100) return undefined;
        return { kind: 'progress', percent, text: capText((p[2] ?? '').trim()) };
      }
      case 'notice':
      case 'warning':
      case 'error': {
        const text = capText((rest ?? '').trim());
        return text === '' ? undefined : { kind: name, text };
      }
      case 'group':
        return { kind: 'group', text: capText((rest ?? '').trim()) };
      case 'endgroup':
        return (rest ?? '').trim() === '' ? { kind: 'endgroup' } : undefined;
      case 'stop-commands':
        if (colons && !cut && rest !== undefined && TOKEN.test(rest)) this.stopToken = rest;
        return undefined;
      default:
        return undefined;
    }
  }
}

/** `text` cut to at most MAX_TEXT bytes of UTF-8, on a character boundary. */
export function capText(text: string, max = MAX_TEXT): string {
  if (Buffer.byteLength(text) <= max) return text;
  const bytes = Buffer.from(text);
  let end = max;
  // Back off to the start of the character cut in two: continuation bytes are 10xxxxxx.
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString('utf8');
}
