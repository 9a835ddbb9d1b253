/**
 * One attempt's log on disk: framed records appended in sequence order, an
 * in-memory index of record offsets, and coalesced fsyncs (many appends, one
 * fsync) so acknowledging a chunk never waits on a sync per chunk. A write
 * that fails (a full disk) is rolled back: the file is cut back to its last
 * whole record and the records from there on are forgotten, unacknowledged,
 * so the agent sends them again and they are appended as if for the first time.
 */
import { EventEmitter } from 'node:events';
import { open, type FileHandle } from 'node:fs/promises';
import { decodeFrames, frameHeader, HEADER, scanFrames, type Frame } from '../../proto/log-frame.js';
import { LogGapError, LogWriteError } from './errors.js';

export interface LogRecordOut extends Frame {
  seq: number;
}

const READ_BATCH_BYTES = 1 << 20;

export class LogFile extends EventEmitter {
  private offsets: number[] = [];
  /** File size of what has been queued for writing. */
  private size = 0;
  /** Records whose bytes are written (readable). */
  private written = 0;
  /** Records covered by a completed fsync. */
  private synced = 0;
  /** What the next writev writes: a header, then its data, per record. */
  private pending: Uint8Array[] = [];
  private tail: Promise<void> = Promise.resolve();
  private flushing = false;
  private syncing: Promise<number> | undefined;
  private pendingSync = false;
  /** The last write that failed, for the durable() calls whose records it dropped. */
  private writeError: Error | undefined;

  private constructor(
    private readonly fh: FileHandle,
    private readonly onWriteError: (err: Error) => void,
  ) {
    super();
    this.setMaxListeners(0);
  }

  /** `onWriteError`: told of every write that failed (and was rolled back). */
  static async open(path: string, onWriteError: (err: Error) => void = () => undefined): Promise<LogFile> {
    const fh = await open(path, 'a+');
    const f = new LogFile(fh, onWriteError);
    const { size } = await fh.stat();
    const buf = Buffer.allocUnsafe(size);
    if (size > 0) await fh.read(buf, 0, size, 0);
    const { offsets, end } = scanFrames(buf, 0);
    if (end < size) await fh.truncate(end); // a torn frame from a crash: drop it, the agent re-sends
    f.offsets = offsets;
    f.size = end;
    f.written = f.synced = offsets.length;
    return f;
  }

  /** Records held (queued for writing included). */
  get count(): number {
    return this.offsets.length;
  }

  get readable(): number {
    return this.written;
  }

  /**
   * Wakes every reader waiting for more records now, so it re-checks whether
   * the attempt is over (it ended, or its agent moved to another peer) rather
   * than at its next periodic look.
   */
  wakeReaders(): void {
    this.emit('wake');
  }

  /** Appends record `seq`; a duplicate is ignored, a gap throws LogGapError. `data` is written later as it is: do not reuse it. */
  append(seq: number, stream: number, data: Uint8Array): boolean {
    if (seq < this.offsets.length) return false;
    if (seq > this.offsets.length) throw new LogGapError(this.offsets.length, seq);
    // Header and data go to writev side by side: the chunk is not copied again (it is up to 1 MiB).
    this.offsets.push(this.size);
    this.size += HEADER + data.length;
    this.pending.push(frameHeader(stream, data.length), data);
    if (!this.flushing) {
      this.flushing = true;
      this.tail = this.flush();
    }
    return true;
  }

  /** Writes queued frames in as few syscalls as possible: one writev per burst. Never rejects: a failed write is rolled back. */
  private async flush(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const frames = this.pending;
        this.pending = [];
        const target = this.written + frames.length / 2;
        try {
          await writevAll(this.fh, frames);
        } catch (err) {
          await this.rollBack(err as Error);
          continue; // records appended since (a resend) go after the cut
        }
        this.written = target;
        this.emit('append', target);
      }
    } finally {
      this.flushing = false;
    }
  }

  /** Forgets every record not yet written and cuts the file after the last whole one (cutting needs no space). */
  private async rollBack(err: Error): Promise<void> {
    const end = this.offsets[this.written] ?? this.size;
    this.offsets.length = this.written;
    this.size = end;
    this.pending = [];
    this.writeError = err;
    await this.fh.truncate(end).catch(() => undefined); // a torn frame left here is cut when the file is next opened
    this.onWriteError(err);
  }

  /** Resolves once every record queued so far is on disk and fsync'd; returns that count. */
  durable(): Promise<number> {
    if (this.synced === this.offsets.length && !this.syncing) return Promise.resolve(this.synced);
    if (this.syncing) {
      this.pendingSync = true;
      return this.syncing.then(() => this.durable());
    }
    const target = this.offsets.length;
    this.syncing = this.tail
      .then(() => {
        // Some of the records this call covers were rolled back: they are not here to be made durable.
        if (this.written < target) throw new LogWriteError(target, this.written, { cause: this.writeError });
        return this.fh.datasync();
      })
      .then(() => {
        this.synced = Math.max(this.synced, target);
        return this.synced;
      })
      .finally(() => {
        this.syncing = undefined;
        this.pendingSync = false;
      });
    return this.syncing;
  }

  /** Reads readable records from `from`, at most about 1 MB at a time. */
  async read(from: number): Promise<LogRecordOut[]> {
    if (from >= this.written) return [];
    const start = this.offsets[from];
    let to = from + 1;
    while (to < this.written && (this.offsets[to] ?? 0) - (start ?? 0) < READ_BATCH_BYTES) to++;
    const end = to < this.offsets.length ? (this.offsets[to] ?? this.size) : this.size;
    if (start === undefined) return [];
    const buf = Buffer.allocUnsafe(end - start);
    await this.fh.read(buf, 0, buf.length, start);
    return decodeFrames(buf).map((f, i) => ({ ...f, seq: from + i }));
  }

  async close(): Promise<void> {
    await this.tail;
    await this.fh.datasync().catch(() => undefined);
    await this.fh.close();
  }
}

/**
 * writev until every byte is down: a nearly full disk takes part of a burst
 * and returns a short count without an error; the next write then says why.
 */
async function writevAll(fh: FileHandle, frames: Uint8Array[]): Promise<void> {
  let rest = frames;
  while (rest.length > 0) {
    const { bytesWritten } = await fh.writev(rest);
    if (bytesWritten === 0) throw new Error('writev wrote nothing');
    rest = after(rest, bytesWritten);
  }
}

/** `bufs` without their first `n` bytes. */
function after(bufs: Uint8Array[], n: number): Uint8Array[] {
  let i = 0;
  while (i < bufs.length && n >= (bufs[i]?.length ?? 0)) n -= bufs[i++]?.length ?? 0;
  const out = bufs.slice(i);
  if (n > 0 && out[0]) out[0] = out[0].subarray(n);
  return out;
}
