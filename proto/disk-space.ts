/**
 * A full disk, seen the same way by the agent (its work dir) and the control
 * plane (its log directory): an error is a full disk when ENOSPC or EDQUOT is
 * down its cause chain, and a `DiskWatch` turns such errors into one state
 * (full, with a reason, or not), logged once per change; it also reads the
 * free space every second, so it sees a disk filling (or emptying) without a
 * write failing. It lives in proto/ because
 * both sides use it and proto/ is the folder both may import.
 */
import { statfs } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import { causeChain } from './cause.js';

const FULL_CODES = new Set(['ENOSPC', 'EDQUOT']);

/** No space left (or over quota) anywhere down `err`'s cause chain. */
export function isDiskFull(err: unknown): boolean {
  for (const e of causeChain(err)) if (FULL_CODES.has((e as NodeJS.ErrnoException).code ?? '')) return true;
  return false;
}

/**
 * Bytes this process may still write on the filesystem holding `path` (its
 * nearest existing ancestor if it does not exist yet); undefined when it cannot be asked.
 */
export async function freeBytes(path: string): Promise<number | undefined> {
  for (let p = resolve(path); ; p = dirname(p)) {
    try {
      const s = await statfs(p);
      return s.bavail * s.bsize;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || p === dirname(p)) return undefined;
    }
  }
}

export interface DiskWatchOptions {
  /** The directory written to: its filesystem is the one watched. */
  readonly dir: string;
  /** What it holds, for log lines and the reason: "work dir", "log directory". */
  readonly what: string;
  readonly log: Logger;
  /** Less free than this counts as full, before any write fails. Default 512 KiB. */
  readonly lowBytes?: number;
  /** Free space needed to count as "there again": more than `lowBytes`, so the state does not flap. Default 1 MiB. */
  readonly highBytes?: number;
  /** How often the free space is read. Default 1 s. */
  readonly probeMs?: number;
}

export class DiskWatch {
  private fullSince: number | undefined;
  private why = '';
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly listeners = new Set<(full: boolean) => void>();
  private readonly low: number;
  private readonly high: number;
  private readonly probeMs: number;

  constructor(private readonly o: DiskWatchOptions) {
    this.low = o.lowBytes ?? 512 * 1024;
    this.high = Math.max(this.low, o.highBytes ?? 1024 * 1024);
    this.probeMs = o.probeMs ?? 1000;
  }

  get full(): boolean {
    return this.fullSince !== undefined;
  }

  /** Why the disk counts as full ("" when it does not). */
  get reason(): string {
    return this.why;
  }

  /**
   * Reads the free space now and then every `probeMs` (statfs: no I/O), so a
   * disk that another process fills is seen before a write of ours fails.
   * Resolves after the first reading. Idempotent.
   */
  async start(): Promise<void> {
    if (this.timer || this.closed) return;
    await this.probe();
  }

  /**
   * Looks at an error of a write under `dir`: a full disk marks the watch
   * full (said once). Returns whether it was one, so the caller can tell its
   * own story for any other error.
   */
  noteError(err: unknown): boolean {
    if (!isDiskFull(err)) return false;
    this.markFull(`no space left on device in the ${this.o.what} ${this.o.dir}`, err);
    return true;
  }

  /** Marks the disk full for a reason seen elsewhere (a supervisor's status said so). */
  noteFull(reason: string): void {
    this.markFull(reason, undefined);
  }

  /** Called with true when the disk fills and false when it has space again. */
  onChange(listener: (full: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }

  private markFull(reason: string, err: unknown): void {
    if (this.full || this.closed) return;
    this.fullSince = Date.now();
    this.why = reason;
    this.o.log.error({ err, dir: this.o.dir, reason }, `${this.o.what} is full: taking no more until there is space`);
    this.emit(true);
  }

  private async probe(): Promise<void> {
    const free = await freeBytes(this.o.dir);
    if (this.closed) return;
    if (free !== undefined && !this.full && free < this.low)
      this.markFull(`only ${Math.floor(free / 1024)} KiB free in the ${this.o.what} ${this.o.dir}`, undefined);
    else if (free !== undefined && this.full && free >= this.high) {
      this.o.log.info(
        { dir: this.o.dir, free_bytes: free, full_ms: Date.now() - (this.fullSince ?? Date.now()) },
        `${this.o.what} has space again`,
      );
      this.fullSince = undefined;
      this.why = '';
      this.emit(false);
    }
    this.timer = setTimeout(() => void this.probe(), this.probeMs);
    this.timer.unref();
  }

  private emit(full: boolean): void {
    for (const l of this.listeners) l(full);
  }
}
