/** The one wait helper: returns what the condition found, bounds every wait, and says what it was waiting for. */
import { describe, expect, it } from 'vitest';
import { sleep, waitUntil, within, WaitTimeoutError } from './wait.js';

describe('waitUntil', () => {
  it('returns the first truthy value of a sync or async condition', async () => {
    let n = 0;
    expect(await waitUntil(() => ++n >= 3 && n, { what: 'three checks' })).toBe(3);
    expect(await waitUntil(async () => (await sleep(1), 'ready'), { what: 'an async answer' })).toBe('ready');
  });

  it('keeps checking through errors, and on timeout names what it waited for and the last value', async () => {
    let n = 0;
    expect(
      await waitUntil(
        () => {
          if (++n < 3) throw new Error('not yet');
          return n;
        },
        { what: 'a check that throws twice' },
      ),
    ).toBe(3);
    const started = Date.now();
    const err = await waitUntil(() => 0, { what: 'a count above zero', timeoutMs: 100, show: () => ({ queued: 2 }) }).catch(
      (e: unknown) => e,
    );
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(err).toBeInstanceOf(WaitTimeoutError);
    expect((err as Error).message).toBe('timed out after 100 ms waiting for a count above zero; last value: 0; { queued: 2 }');
  });

  it('reports the last error as the cause', async () => {
    const err = (await waitUntil(
      () => {
        throw new Error('still down');
      },
      { what: 'the store', timeoutMs: 50 },
    ).catch((e: unknown) => e)) as WaitTimeoutError;
    expect(err.message).toContain('waiting for the store; last error: still down');
    expect((err.cause as Error).message).toBe('still down');
  });

  it('is not held past its deadline by a check that never answers', async () => {
    const started = Date.now();
    const never = (): Promise<boolean> => new Promise(() => undefined);
    const err = (await waitUntil(never, { what: 'a silent peer', timeoutMs: 100 }).catch((e: unknown) => e)) as WaitTimeoutError;
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(err.message).toMatch(
      /^timed out after 100 ms waiting for a silent peer; last error: timed out after \d+ ms waiting for a check/,
    );
  });
});

describe('within', () => {
  it('passes a settled promise through and bounds one that never settles', async () => {
    expect(await within(Promise.resolve(7), { what: 'seven', timeoutMs: 1_000 })).toBe(7);
    const err = await within(new Promise(() => undefined), { what: 'nothing', timeoutMs: 50 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WaitTimeoutError);
    expect((err as Error).message).toBe('timed out after 50 ms waiting for nothing');
  });
});
