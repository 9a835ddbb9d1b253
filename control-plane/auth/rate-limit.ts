/**
 * Token buckets, keyed (a token id, a tenant, a client address). A bucket
 * holds up to `burst` and refills at `perSecond`; a call that finds it empty
 * is told how long until it would not be. Buckets are kept for the most
 * recently used keys only (bounded memory whatever a flood of keys sends).
 */
import { NamedError, hasCause } from '../../proto/cause.js';

export interface Rate {
  /** Sustained calls (or jobs) per second. */
  perSecond: number;
  /** What may be spent at once after a quiet spell. */
  burst: number;
}

/** Over the limit: `retryAfterMs` until `cost` would fit. Mapped to RESOURCE_EXHAUSTED. */
export class RateLimitedError extends NamedError {
  constructor(
    readonly what: string,
    readonly retryAfterMs: number,
  ) {
    super(`${what}; retry in ${retryAfterMs} ms`);
  }
}

export const findRateLimited = (err: unknown): boolean => hasCause(err, RateLimitedError);

function checked(rate: Rate): Rate {
  if (!(rate.perSecond > 0) || !(rate.burst >= 1))
    throw new RangeError(`a rate needs perSecond > 0 and burst >= 1, got ${rate.perSecond}/s burst ${rate.burst}`);
  return rate;
}

interface Bucket {
  level: number;
  at: number;
}

/** Keys remembered at most; the least recently used go first. */
const MAX_KEYS = 10_000;

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  private rate: Rate;

  constructor(rate: Rate) {
    this.rate = checked(rate);
  }

  /** A new rate for every key; a bucket fuller than the new burst is cut down to it at its next use. */
  setRate(rate: Rate): void {
    this.rate = checked(rate);
  }

  /**
   * Spends `cost` from `key`'s bucket; returns 0 when it fit, else the
   * milliseconds until it would (nothing is spent then).
   */
  take(key: string, cost = 1, now = Date.now()): number {
    const b = this.bucket(key, now);
    if (b.level >= cost) {
      b.level -= cost;
      return 0;
    }
    return Math.ceil(((Math.min(cost, this.rate.burst) - b.level) / this.rate.perSecond) * 1000);
  }

  /** True while `key`'s bucket is empty (without spending). */
  exhausted(key: string, now = Date.now()): number {
    const b = this.bucket(key, now);
    return b.level >= 1 ? 0 : Math.ceil(((1 - b.level) / this.rate.perSecond) * 1000);
  }

  private bucket(key: string, now: number): Bucket {
    let b = this.buckets.get(key);
    if (b) {
      this.buckets.delete(key); // re-inserted below: most recently used last
      b.level = Math.min(this.rate.burst, b.level + ((now - b.at) / 1000) * this.rate.perSecond);
      b.at = now;
    } else {
      b = { level: this.rate.burst, at: now };
      if (this.buckets.size >= MAX_KEYS) this.buckets.delete(this.buckets.keys().next().value!);
    }
    this.buckets.set(key, b);
    return b;
  }
}
