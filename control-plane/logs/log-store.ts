/**
 * The peer's log blob directory: one file per job attempt, outside the store
 * (etcd holds only small metadata). Appends are fsync'd before the gateway
 * acknowledges them; readers can follow a log as it grows.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { LogFile, type LogRecordOut } from './log-file.js';

const SAFE_ID = /^[A-Za-z0-9_.-]+$/;

export class LogStore {
  private readonly files = new Map<string, Promise<LogFile>>();

  constructor(private readonly dir: string) {}

  private key(jobId: string, attempt: number): string {
    if (!SAFE_ID.test(jobId)) throw new Error(`bad job id for a log path: ${JSON.stringify(jobId)}`);
    return `${jobId}/${attempt}`;
  }

  /** The attempt's log file, opened (and created) on first use. */
  file(jobId: string, attempt: number): Promise<LogFile> {
    const key = this.key(jobId, attempt);
    let f = this.files.get(key);
    if (!f) {
      const dir = join(this.dir, jobId);
      f = mkdir(dir, { recursive: true }).then(() => LogFile.open(join(dir, `${attempt}.log`)));
      f.catch(() => this.files.delete(key));
      this.files.set(key, f);
    }
    return f;
  }

  /**
   * Yields records from `from`; with `follow`, waits for more until `done()`
   * says the attempt is over and everything it holds was yielded, or `signal` aborts.
   */
  async *read(jobId: string, attempt: number, from: number, follow: () => 'more' | 'done', signal: AbortSignal): AsyncGenerator<LogRecordOut> {
    const file = await this.file(jobId, attempt);
    let seq = from;
    while (!signal.aborted) {
      const batch = await file.read(seq);
      for (const r of batch) yield r;
      seq += batch.length;
      if (batch.length > 0) continue;
      if (follow() === 'done' && seq >= file.readable) return;
      await waitForAppend(file, seq, signal);
    }
  }

  /** Closes an attempt's file once its log is sealed (the result is stored). */
  async seal(jobId: string, attempt: number): Promise<void> {
    const key = this.key(jobId, attempt);
    const f = this.files.get(key);
    if (!f) return;
    const file = await f;
    await file.durable();
    if (file.listenerCount('append') > 0) return; // followers still read; closed with the store
    this.files.delete(key);
    await file.close();
  }

  async close(): Promise<void> {
    const all = [...this.files.values()];
    this.files.clear();
    await Promise.allSettled(all.map(async (f) => (await f).close()));
  }
}

/** Waits until the file holds record `seq`, a wake-up tick passes, or the signal aborts. */
function waitForAppend(file: LogFile, seq: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      file.off('append', onAppend);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const onAppend = (n: number): void => {
      if (n > seq) done();
    };
    // A periodic wake-up lets the caller re-check whether the attempt ended.
    const timer = setTimeout(done, 250);
    file.on('append', onAppend);
    signal.addEventListener('abort', done, { once: true });
  });
}
