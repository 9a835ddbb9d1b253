/**
 * Reads the attempt's spool as records, following it as the supervisor
 * appends. Reads in large blocks into one reused buffer and parses frames in
 * memory, so a 200 MB spool costs a few hundred reads, not one per record;
 * records before the wanted one are skipped without being copied.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { HEADER } from '../../proto/log-frame.js';
import type { LogRecord, OutputStream } from './executor.js';

const BLOCK = 1 << 20;
const STREAMS: Readonly<Record<number, OutputStream>> = { 1: 'stdout', 2: 'stderr' };

export interface SpoolBatch {
  /** Complete records with seq >= the `from` asked for. */
  readonly records: LogRecord[];
  /** The read reached the end of the file as it is now: wait before reading again. */
  readonly atEnd: boolean;
}

export class SpoolReader {
  private block = Buffer.allocUnsafe(BLOCK);
  /** Bytes of a partial frame kept at the start of `block`, waiting for the rest. */
  private kept = 0;
  /** File offset of the next read. */
  private pos = 0;
  private seq = 0;

  private constructor(private readonly fh: FileHandle) {}

  static async open(path: string): Promise<SpoolReader> {
    return new SpoolReader(await open(path, 'r'));
  }

  /** Complete records parsed so far (the next record's sequence number). */
  get next(): number {
    return this.seq;
  }

  /** Reads up to one block further and returns the complete records in it from `from` on. */
  async read(from: number): Promise<SpoolBatch> {
    this.growForPendingFrame();
    const room = this.block.length - this.kept;
    const { bytesRead } = await this.fh.read(this.block, this.kept, room, this.pos);
    this.pos += bytesRead;
    const end = this.kept + bytesRead;
    const records: LogRecord[] = [];
    let at = 0;
    while (at + HEADER <= end) {
      const len = this.block.readUInt32BE(at + 1);
      if (at + HEADER + len > end) break;
      if (this.seq >= from) {
        const data = Buffer.from(this.block.subarray(at + HEADER, at + HEADER + len));
        records.push({ seq: this.seq, stream: STREAMS[this.block.readUInt8(at)] ?? 'stdout', data });
      }
      this.seq++;
      at += HEADER + len;
    }
    this.block.copy(this.block, 0, at, end); // a partial frame waits for the rest
    this.kept = end - at;
    return { records, atEnd: bytesRead < room };
  }

  /** Our writer caps records at 64 KiB, but a frame longer than the block must still fit once it is complete. */
  private growForPendingFrame(): void {
    if (this.kept < HEADER) return;
    const need = HEADER + this.block.readUInt32BE(1);
    if (need <= this.block.length) return;
    const bigger = Buffer.allocUnsafe(need);
    this.block.copy(bigger, 0, 0, this.kept);
    this.block = bigger;
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}
