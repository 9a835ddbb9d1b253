import { status as Status } from '@grpc/grpc-js';
import { describe, expect, it, vi } from 'vitest';
import { Backoff, delay, isRefusal, isRetryableStatus, statusCode } from './retry.js';

const waits = (b: Backoff, n: number): number[] => Array.from({ length: n }, () => b.next());

describe('Backoff', () => {
  it('doubles up to the cap, and starts over after reset', () => {
    const b = new Backoff({ baseMs: 50, capMs: 1_000, jitter: 'none' });
    expect(waits(b, 7)).toEqual([50, 100, 200, 400, 800, 1_000, 1_000]);
    b.reset();
    expect(b.next()).toBe(50);
  });

  it('waits between half the ceiling and the ceiling with half jitter, 0 to the ceiling with full', () => {
    expect(waits(new Backoff({ baseMs: 100, capMs: 5_000, random: () => 0 }), 3)).toEqual([50, 100, 200]);
    expect(waits(new Backoff({ baseMs: 100, capMs: 5_000, random: () => 0.999999 }), 3)).toEqual([100, 200, 400]);
    expect(waits(new Backoff({ baseMs: 100, capMs: 5_000, jitter: 'full', random: () => 0 }), 2)).toEqual([0, 0]);
    expect(waits(new Backoff({ baseMs: 100, capMs: 5_000, jitter: 'full', random: () => 0.5 }), 2)).toEqual([50, 100]);
  });

  it('stays at the cap however many failures come', () => {
    const b = new Backoff({ baseMs: 1, capMs: 300, jitter: 'none' });
    expect(waits(b, 100).at(-1)).toBe(300);
  });
});

describe('retryable statuses', () => {
  const failed = (code: Status): Error => Object.assign(new Error('call failed'), { code });

  it('finds the status of a failed call, wrapped or not', () => {
    expect(statusCode(failed(Status.UNAVAILABLE))).toBe(Status.UNAVAILABLE);
    expect(statusCode(new Error('outer', { cause: failed(Status.ABORTED) }))).toBe(Status.ABORTED);
    expect(statusCode(new Error('no status'))).toBeUndefined();
    expect(statusCode(Object.assign(new Error('system'), { code: 'ECONNREFUSED' }))).toBeUndefined();
  });

  it('retries a server that went away or a cut call, not a request that would fail again', () => {
    for (const code of [Status.UNAVAILABLE, Status.INTERNAL, Status.ABORTED, Status.CANCELLED])
      expect(isRetryableStatus(failed(code))).toBe(true);
    for (const code of [Status.NOT_FOUND, Status.INVALID_ARGUMENT, Status.DEADLINE_EXCEEDED])
      expect(isRetryableStatus(failed(code))).toBe(false);
  });

  it('calls credentials and identity refused for good, and nothing else', () => {
    for (const code of [Status.UNAUTHENTICATED, Status.PERMISSION_DENIED, Status.INVALID_ARGUMENT])
      expect(isRefusal(failed(code))).toBe(true);
    for (const code of [Status.UNAVAILABLE, Status.NOT_FOUND, Status.RESOURCE_EXHAUSTED]) expect(isRefusal(failed(code))).toBe(false);
    expect(isRefusal(new Error('no status'))).toBe(false);
  });
});

describe('delay', () => {
  it('ends early on abort and clears its timer', async () => {
    vi.useFakeTimers();
    try {
      const stop = new AbortController();
      const waiting = delay(60_000, stop.signal);
      expect(vi.getTimerCount()).toBe(1);
      stop.abort();
      await waiting;
      expect(vi.getTimerCount()).toBe(0);
      await delay(60_000, stop.signal); // already aborted: resolves at once, sets no timer
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});
