/**
 * How long a follower keeps re-opening a broken stream: retryable gRPC
 * failures (see `isRetryable` in errors.ts) are retried with capped, jittered
 * exponential backoff until the window has passed without any progress.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { isRetryable } from './errors.js';

export interface ResumeOptions {
  /** Give up after this long without progress. Default 30 s. */
  windowMs: number;
  /** First backoff delay. Default 250 ms. */
  baseDelayMs: number;
  /** Largest backoff delay. Default 5 s. */
  maxDelayMs: number;
}

export const DEFAULT_RESUME: ResumeOptions = { windowMs: 30_000, baseDelayMs: 250, maxDelayMs: 5_000 };

export class ResumeWindow {
  private failingSince: number | undefined;
  private failures = 0;

  constructor(private readonly options: ResumeOptions = DEFAULT_RESUME) {}

  /** A call succeeded or a record arrived: the next failure starts a fresh window. */
  progressed(): void {
    this.failingSince = undefined;
    this.failures = 0;
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
    await sleep(Math.min(left, this.delay(this.failures++)));
  }

  // "Equal jitter": half the exponential step fixed, half random, so retries of many CLIs spread out.
  private delay(failures: number): number {
    const step = Math.min(this.options.maxDelayMs, this.options.baseDelayMs * 2 ** Math.min(failures, 20));
    return step / 2 + Math.random() * (step / 2);
  }
}
