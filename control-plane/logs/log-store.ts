/**
 * The peer's log blob directory: one file per job attempt, outside the store
 * (etcd holds only small metadata). Appends are fsync'd before the gateway
 * acknowledges them; readers can follow a log as it grows. A full disk is
 * watched (`full`, `reason`): the gateway then takes no chunks, leaving them
 * unacknowledged in the agents' spools, and the peer reports not ready.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { DiskWatch } from '../../proto/disk-space.js';
import type { LogStream } from '../../proto/gen/runmesh/v1/job.js';
import { LogFile, type LogRecordOut } from './log-file.js';

/** One record of an attempt's log, wherever it was read from (this peer's files, or another peer). */
export interface LogRecord {
  seq: number;
  stream: LogStream;
  data: Uint8Array;
}

/** Which records of which attempt to read; with `follow`, on until the attempt is over. */
export interface LogRead {
  jobId: string;
  attempt: number;
  fromSeq: number;
  follow: boolean;
}

const SAFE_ID = /^[A-Za-z0-9_.-]+$/;

interface Open {
  file: Promise<LogFile>;
  /** Readers inside `read()`: a sealed file is closed only once the last one leaves. */
  readers: number;
  sealed: boolean;
  /** Opened through `file()` (chunks arrive, a copy is written): kept open until sealed. A file only read closes with its last reader. */
  writing: boolean;
}

/** A job id safe to use as a directory name; throws otherwise. */
function checked(jobId: string): string {
  if (!SAFE_ID.test(jobId)) throw new Error(`bad job id for a log path: ${JSON.stringify(jobId)}`);
  return jobId;
}

export class LogStore {
  private readonly files = new Map<string, Open>();
  private readonly disk: DiskWatch;
  private readonly log: Logger;

  /** `logger`: where a full disk is said (once) and a failed write of another kind. Default: nowhere. */
  constructor(
    private readonly dir: string,
    o: { logger?: Logger } = {},
  ) {
    this.log = o.logger ?? pino({ enabled: false });
    this.disk = new DiskWatch({ dir, what: 'log directory', log: this.log });
    void this.disk.start();
  }

  /** True while the directory's disk is full (from a failed write until there is space again). */
  get full(): boolean {
    return this.disk.full;
  }

  /** Why the store takes no chunks ('' while it does). */
  get reason(): string {
    return this.disk.reason;
  }

  private writeFailed(err: unknown): void {
    if (!this.disk.noteError(err)) this.log.error({ err, dir: this.dir }, 'could not write a log file');
  }

  private key(jobId: string, attempt: number): string {
    return `${checked(jobId)}/${attempt}`;
  }

  /** The attempt's log file, opened (and created) on first use. */
  file(jobId: string, attempt: number): Promise<LogFile> {
    const o = this.open(this.key(jobId, attempt), jobId, attempt);
    o.writing = true;
    return o.file;
  }

  private path(jobId: string, attempt: number): string {
    return join(this.dir, jobId, `${attempt}.log`);
  }

  private open(key: string, jobId: string, attempt: number): Open {
    let o = this.files.get(key);
    if (!o) {
      const file = mkdir(join(this.dir, jobId), { recursive: true }).then(() =>
        LogFile.open(this.path(jobId, attempt), (err) => this.writeFailed(err)),
      );
      file.catch((err: unknown) => {
        this.files.delete(key);
        this.disk.noteError(err);
      });
      o = { file, readers: 0, sealed: false, writing: false };
      this.files.set(key, o);
    }
    return o;
  }

  /**
   * Yields records from `from`; with `follow`, waits for more until `done()`
   * says the attempt is over and everything it holds was yielded, or `signal` aborts.
   */
  async *read(
    jobId: string,
    attempt: number,
    from: number,
    follow: () => 'more' | 'done',
    signal: AbortSignal,
  ): AsyncGenerator<LogRecordOut> {
    const key = this.key(jobId, attempt);
    // Nothing here and nothing more to come: do not leave an empty file behind for having looked.
    if (!this.files.has(key) && follow() === 'done' && !existsSync(this.path(jobId, attempt))) return;
    const o = this.open(key, jobId, attempt);
    o.readers++;
    try {
      const file = await o.file;
      let seq = from;
      while (!signal.aborted) {
        const batch = await file.read(seq);
        for (const r of batch) yield r;
        seq += batch.length;
        if (batch.length > 0) continue;
        if (follow() === 'done' && seq >= file.readable) return;
        await waitForAppend(file, seq, signal);
      }
    } finally {
      o.readers--;
      if ((o.sealed || !o.writing) && o.readers === 0) await this.closeEntry(key, o);
    }
  }

  /** The jobs with logs in this directory, in id order (which is submission order). */
  async jobs(): Promise<string[]> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    return names.filter((n) => SAFE_ID.test(n)).sort();
  }

  /** Deletes every attempt's log of a job; false (nothing deleted) while one of them is open here. */
  async remove(jobId: string): Promise<boolean> {
    const prefix = `${checked(jobId)}/`;
    for (const k of this.files.keys()) if (k.startsWith(prefix)) return false;
    const dir = join(this.dir, jobId);
    if (!existsSync(dir)) return false;
    await rm(dir, { recursive: true, force: true });
    return true;
  }

  /** Closes an attempt's file once its log is sealed (the result is stored). */
  async seal(jobId: string, attempt: number): Promise<void> {
    const key = this.key(jobId, attempt);
    const o = this.files.get(key);
    if (!o) return;
    await (await o.file).durable();
    o.sealed = true;
    if (o.readers === 0) await this.closeEntry(key, o);
  }

  private async closeEntry(key: string, o: Open): Promise<void> {
    if (this.files.get(key) !== o) return;
    this.files.delete(key);
    await (await o.file).close();
  }

  async close(): Promise<void> {
    this.disk.close();
    const all = [...this.files.values()];
    this.files.clear();
    await Promise.allSettled(all.map(async (o) => (await o.file).close()));
  }
}

/** Waits until the file holds record `seq`, a wake-up tick passes, or the signal aborts. */
function waitForAppend(file: LogFile, seq: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      file.off('append', onAppend);
      file.off('wake', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const onAppend = (n: number): void => {
      if (n > seq) done();
    };
    // A periodic wake-up lets the caller re-check whether the attempt ended.
    const timer = setTimeout(done, 250);
    file.on('append', onAppend);
    file.once('wake', done);
    signal.addEventListener('abort', done, { once: true });
  });
}
