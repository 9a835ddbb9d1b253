/**
 * Reads the attempt's spool as records, from any sequence number, following
 * it as the supervisor appends. Reads in large blocks and parses frames in
 * memory, so a 200 MB spool costs a few hundred reads, not one per record.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { HEADER } from '../../proto/log-frame.js';
import type { LogRecord } from './executor.js';

const BLOCK = 1 << 20;
const STREAMS = { 1: 'stdout', 2: 'stderr' } as const;

export class SpoolReader {
  private buf = Buffer.alloc(0);
  private pos = 0;
  private seq = 0;

  private constructor(private readonly fh: FileHandle) {}

  static async open(path: string): Promise<SpoolReader> {
    return new SpoolReader(await open(path, 'r'));
  }

  /** Records read so far (the next record's sequence number). */
  get next(): number {
    return this.seq;
  }

  /** Reads the complete records appended since the last call (at most about one block). */
  async read(): Promise<LogRecord[]> {
    const chunk = Buffer.allocUnsafe(BLOCK);
    const { bytesRead } = await this.fh.read(chunk, 0, BLOCK, this.pos);
    if (bytesRead === 0) return [];
    this.pos += bytesRead;
    const data = this.buf.length ? Buffer.concat([this.buf, chunk.subarray(0, bytesRead)]) : chunk.subarray(0, bytesRead);
    const out: LogRecord[] = [];
    let at = 0;
    while (at + HEADER <= data.length) {
      const len = data.readUInt32BE(at + 1);
      if (at + HEADER + len > data.length) break;
      const stream = STREAMS[data.readUInt8(at) as 1 | 2] ?? 'stdout';
      out.push({ seq: this.seq++, stream, data: Buffer.from(data.subarray(at + HEADER, at + HEADER + len)) });
      at += HEADER + len;
    }
    this.buf = Buffer.from(data.subarray(at)); // a partial frame waits for the rest
    return out;
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}
