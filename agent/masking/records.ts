/**
 * Masks an attempt's spool records as they are sent, keeping the records as
 * they are: the same sequence numbers, the same count, each record's stream.
 * So the control plane's acks, its gap detection and a resend from any
 * sequence number work on masked records exactly as on raw ones.
 *
 * Each stream (stdout, stderr) is one byte sequence; a secret may be split
 * across any number of its records (two writes of the job, or one write the
 * supervisor read in two). Where a form matches, `***` goes into the record
 * where the match starts and the rest of the match is dropped from the
 * records it runs into (which may be left empty). A record goes out once
 * everything in it is decided: at once, unless its stream ends in a proper
 * prefix of some form, in which case it (and every record after it, to keep
 * the order) waits for that stream's next record or the end of the spool.
 * The bytes held are at most the longest form less one.
 *
 * The output is a pure function of the raw records, so a resend from record
 * k is the same masking replayed from record 0 with the records before k
 * dropped (AttemptStream does that), and gives byte for byte what the first
 * send gave.
 */
import type { LogRecord, OutputStream } from '../executor/executor.js';
import { REPLACEMENT, type Matcher } from './matcher.js';

interface Pending {
  readonly seq: number;
  readonly stream: OutputStream;
  /** Offsets of the record's bytes in its stream. */
  readonly start: number;
  readonly end: number;
  readonly out: Buffer[];
}

interface StreamState {
  /** Raw bytes of the stream from offset `pos` on: not decided yet. */
  raw: Buffer;
  /** Everything before this offset is decided (masked into `out` of its records). */
  pos: number;
  /** Bytes of the stream so far. */
  total: number;
  /** Its records not yet wholly decided, in order. */
  open: Pending[];
}

export class RecordMasker {
  private readonly queue: Pending[] = [];
  private readonly streams: Record<OutputStream, StreamState> = { stdout: emptyStream(), stderr: emptyStream() };

  constructor(private readonly matcher: Matcher) {}

  /** Takes the next record of the spool (in sequence); returns the records now decided, masked, in sequence. */
  push(r: LogRecord): LogRecord[] {
    const s = this.streams[r.stream];
    const p: Pending = { seq: r.seq, stream: r.stream, start: s.total, end: s.total + r.data.length, out: [] };
    s.total = p.end;
    s.raw = s.raw.length === 0 ? r.data : Buffer.concat([s.raw, r.data]);
    s.open.push(p);
    this.queue.push(p);
    this.scan(s, false);
    return this.ready();
  }

  /** The spool is complete: decides what was held (a prefix that never became a secret is shown) and returns the rest. */
  end(): LogRecord[] {
    this.scan(this.streams.stdout, true);
    this.scan(this.streams.stderr, true);
    return this.ready();
  }

  private ready(): LogRecord[] {
    const done: LogRecord[] = [];
    while (this.queue.length > 0) {
      const p = this.queue[0]!;
      if (p.end > this.streams[p.stream].pos) break;
      this.queue.shift();
      done.push({ seq: p.seq, stream: p.stream, data: p.out.length === 1 ? p.out[0]! : Buffer.concat(p.out) });
    }
    return done;
  }

  /** Decides as much of the stream as its bytes allow. */
  private scan(s: StreamState, ended: boolean): void {
    const { raw } = s;
    let p = 0;
    while (p < raw.length) {
      const q = this.matcher.nextCandidate(raw, p);
      this.keep(s, p, q);
      p = q;
      if (q === raw.length) break;
      const v = this.matcher.at(raw, q, ended);
      if (v.kind === 'undecided') break;
      if (v.kind === 'match') {
        this.owner(s, s.pos + q).out.push(REPLACEMENT);
        p = q + v.length;
      } else {
        this.keep(s, q, q + 1);
        p = q + 1;
      }
    }
    s.pos += p;
    // A copy, so the held tail does not pin a large record's whole buffer.
    s.raw = p === 0 ? raw : Buffer.from(raw.subarray(p));
    while (s.open.length > 0 && s.open[0]!.end <= s.pos) s.open.shift();
  }

  /** Appends raw bytes [from, to) (relative to `s.raw`) to the records they belong to. */
  private keep(s: StreamState, from: number, to: number): void {
    if (from >= to) return;
    const a = s.pos + from;
    const b = s.pos + to;
    for (const r of s.open) {
      if (r.end <= a) continue;
      if (r.start >= b) break;
      const x = Math.max(a, r.start);
      const y = Math.min(b, r.end);
      if (y > x) r.out.push(s.raw.subarray(x - s.pos, y - s.pos));
    }
  }

  /** The open record holding stream offset `at`. */
  private owner(s: StreamState, at: number): Pending {
    const r = s.open.find((o) => o.start <= at && at < o.end);
    if (!r) throw new Error(`no open record holds offset ${at}`); // cannot happen: every undecided byte is in an open record
    return r;
  }
}

function emptyStream(): StreamState {
  return { raw: Buffer.alloc(0), pos: 0, total: 0, open: [] };
}
