/**
 * The attempt's progress file ($RUNMESH_PROGRESS): the job appends command
 * lines to it (same syntax as on stdout); the agent reads what was appended,
 * masks it like the log (a secret never lands in an annotation), and parses
 * it. A file cut shorter than what was read is read again from its start;
 * anything but a plain file in its place (a FIFO, a link) is not read.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import type { LogRecord } from '../executor/executor.js';
import { RecordMasker, type Matcher } from '../masking/index.js';
import { CommandParser, type Command } from './commands.js';

const READ_BYTES = 64 * 1024;

export class ProgressFile {
  private offset = 0;
  private seq = 0;
  private readonly parser = new CommandParser();
  private readonly masker: RecordMasker | undefined;

  constructor(
    private readonly path: string,
    masks: Matcher,
    private readonly take: (c: Command) => void,
  ) {
    this.masker = masks.empty ? undefined : new RecordMasker(masks);
  }

  /** Parses what was appended since the last read; a missing file has nothing. */
  async read(): Promise<void> {
    let fh;
    try {
      // Never blocks on a FIFO, never follows a link put in its place: only a plain file is read.
      fh = await open(this.path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ELOOP') return;
      throw err;
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) return;
      if (st.size < this.offset) this.offset = 0;
      const buf = Buffer.allocUnsafe(READ_BYTES);
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, READ_BYTES, this.offset);
        if (bytesRead === 0) return;
        this.offset += bytesRead;
        this.parse({ seq: this.seq++, stream: 'stdout', data: Buffer.from(buf.subarray(0, bytesRead)) });
      }
    } finally {
      await fh.close();
    }
  }

  /** The job is done writing: reads the rest, and the last line without a newline counts. */
  async end(): Promise<void> {
    await this.read();
    for (const r of this.masker?.end() ?? []) this.parseMasked(r);
    for (const f of this.parser.end()) this.take(f.command);
  }

  private parse(r: LogRecord): void {
    if (!this.masker) return this.parseMasked(r);
    for (const m of this.masker.push(r)) this.parseMasked(m);
  }

  private parseMasked(r: LogRecord): void {
    for (const f of this.parser.push(r.data, r.seq)) this.take(f.command);
  }
}
