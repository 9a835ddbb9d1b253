/**
 * The supervisor's side of the spool: one fd opened for append, one framed
 * record per pipe read, in arrival order across stdout and stderr. No fsync
 * per record (the control plane's ack is what makes a record safe); `seal`
 * fsyncs once, before the status that announces the final count is written.
 */
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { encodeFrame } from '../../proto/log-frame.js';
import type { OutputStream } from './executor.js';
import { STREAM_CODES } from './files.js';

/** Largest record; a bigger read is cut into several records. */
export const MAX_RECORD = 64 * 1024;

export class SpoolWriter {
  private readonly fd: number;
  private count = 0;
  private sealed = false;

  constructor(path: string) {
    this.fd = openSync(path, 'a');
  }

  /** Records written so far: the next record's sequence number. */
  get records(): number {
    return this.count;
  }

  append(stream: OutputStream, chunk: Buffer): void {
    if (this.sealed) return; // a straggler after the status was decided has nowhere to go
    for (let at = 0; at < chunk.length; at += MAX_RECORD) {
      writeAll(this.fd, encodeFrame(STREAM_CODES[stream], chunk.subarray(at, at + MAX_RECORD)));
      this.count++;
    }
  }

  /** Makes every record durable and closes the file. Idempotent. */
  seal(): void {
    if (this.sealed) return;
    this.sealed = true;
    fsyncSync(this.fd);
    closeSync(this.fd);
  }
}

/** A frame goes down whole: a short write (full disk, odd filesystem) must not leave half a header behind a later frame. */
function writeAll(fd: number, buf: Buffer): void {
  for (let at = 0; at < buf.length;) at += writeSync(fd, buf, at);
}
