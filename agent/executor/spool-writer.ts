/**
 * The supervisor's side of the spool: one fd opened for append, one framed
 * record per pipe read, in arrival order across stdout and stderr. No fsync
 * per record (the control plane's ack is what makes a record safe); `seal`
 * fsyncs once, before the status that announces the final count is written.
 * A write that fails (a full disk) is cut back to the last whole record and
 * the spool takes nothing more: `failed` says why, and the count stays exact.
 */
import { closeSync, fdatasync, fsyncSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { promisify } from 'node:util';
import { encodeFrame } from '../../proto/log-frame.js';
import type { OutputStream } from './executor.js';
import { STREAM_CODES } from './files.js';

const fdatasyncAsync = promisify(fdatasync);

/** Largest record; a bigger read is cut into several records. */
export const MAX_RECORD = 64 * 1024;

export class SpoolWriter {
  private readonly fd: number;
  private count = 0;
  /** Bytes of whole records written. */
  private size = 0;
  private sealed = false;
  /** The write error that stopped the spool, if one did. */
  failed: Error | undefined;

  /** `onFail`: called once, when a write fails and the spool stops taking records. */
  constructor(
    path: string,
    private readonly onFail: (err: Error) => void = () => undefined,
  ) {
    this.fd = openSync(path, 'a');
  }

  /** Records written so far: the next record's sequence number. */
  get records(): number {
    return this.count;
  }

  append(stream: OutputStream, chunk: Buffer): void {
    if (this.sealed || this.failed) return; // a straggler after the status was decided has nowhere to go
    for (let at = 0; at < chunk.length; at += MAX_RECORD) {
      const frame = encodeFrame(STREAM_CODES[stream], chunk.subarray(at, at + MAX_RECORD));
      try {
        writeAll(this.fd, frame);
      } catch (err) {
        return this.fail(err as Error);
      }
      this.size += frame.length;
      this.count++;
    }
  }

  /** Drops a torn frame (cutting a file needs no space) and stops taking records. */
  private fail(err: Error): void {
    this.failed = err;
    try {
      ftruncateSync(this.fd, this.size);
    } catch {
      // the reader stops at a torn frame anyway: the status counts whole records only
    }
    this.onFail(err);
  }

  /** Makes every record durable and closes the file. Idempotent. */
  seal(): void {
    if (this.sealed) return;
    this.sealed = true;
    try {
      fsyncSync(this.fd);
    } finally {
      closeSync(this.fd);
    }
  }

  /**
   * seal() off the main thread: the supervisor runs many attempts, and one
   * waiting for its disk must not hold up another's spawn or output.
   */
  async sealAsync(): Promise<void> {
    if (this.sealed) return;
    this.sealed = true;
    try {
      await fdatasyncAsync(this.fd);
    } finally {
      closeSync(this.fd);
    }
  }
}

/** A frame goes down whole: a short write (full disk, odd filesystem) must not leave half a header behind a later frame. */
function writeAll(fd: number, buf: Buffer): void {
  for (let at = 0; at < buf.length;) at += writeSync(fd, buf, at);
}
