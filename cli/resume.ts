/**
 * How long a follower keeps re-opening a broken stream: retryable gRPC
 * failures (see `isRetryable` in errors.ts) are retried with the shared
 * backoff (transport/retry.ts) until the window has passed without any progress.
 */
import { Backoff, delay } from '../transport/retry.js';
import { isRetryable } from './errors.js';

export interface ResumeOptions {
  /** Give up after this long without progress. Default 30 s. */
  windowMs: number;
  /** First backoff ceiling (half jitter: waits are between half of it and all of it). Default 250 ms. */
  baseDelayMs: number;
  /** Largest backoff ceiling. Default 5 s. */
  maxDelayMs: number;
}

export const DEFAULT_RESUME: ResumeOptions = { windowMs: 30_000, baseDelayMs: 250, maxDelayMs: 5_000 };

export class ResumeWindow {
  private failingSince: number | undefined;
  private readonly backoff: Backoff;

  constructor(private readonly options: ResumeOptions = DEFAULT_RESUME) {
    // Half jitter, so the retries of many CLIs spread out.
    this.backoff = new Backoff({ baseMs: options.baseDelayMs, capMs: options.maxDelayMs, jitter: 'half' });
  }

  /** A call succeeded or a record arrived: the next failure starts a fresh window. */
  progressed(): void {
    this.failingSince = undefined;
    this.backoff.reset();
  }

  /**
   * Waits out the backoff for `err` when it is retryable and the window is
   * still open; rethrows `err` otherwise.
   */
  async retryAfter(err: unknown): Promise<void> {
    if (!isRetryable(err)) throw err;
    const now = Date.now();
    this.failingSince ??= now;
    const left = this.failingSince + this.options.windowMs - now;
    if (left <= 0) throw err;
    await delay(Math.min(left, this.backoff.next()));
  }
}
