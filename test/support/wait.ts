/**
 * Waiting, for tests and benchmarks, one way. `waitUntil` polls a condition
 * until it holds; `within` bounds a promise; both are bounded and fail naming
 * what did not happen and the last thing seen. `sleep` only lets time pass: a
 * test uses it to show that something does NOT happen in a while (and says
 * so), never to wait for something that does.
 */
import { inspect } from 'node:util';

export interface WaitOptions {
  /** What is awaited, for the error: "the job to start". */
  what: string;
  /** Default 10 s. */
  timeoutMs?: number;
  /** Between two checks of the condition. Default 25 ms. */
  intervalMs?: number;
  /** Called once on timeout when the condition's own last value says too little (the last job seen, an output tail). */
  show?: () => unknown;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_INTERVAL_MS = 25;

/** A bounded wait that ran out. `last` is the condition's last value; `cause`, its last error. */
export class WaitTimeoutError extends Error {
  override readonly name = 'WaitTimeoutError';

  constructor(
    readonly what: string,
    readonly timeoutMs: number,
    readonly last: unknown,
    detail: string,
    options?: ErrorOptions,
  ) {
    super(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`, options);
  }
}

/** What a condition returns once it holds. */
export type Truthy<T> = Exclude<T, false | 0 | 0n | '' | null | undefined>;

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Checks `condition` (sync or async) until it returns a truthy value, which is
 * returned. A check that throws counts as not yet: the wait goes on, and the
 * last error is the timeout's `cause`. A check still pending at the deadline
 * (a call that never answers) does not hold the wait past it.
 */
export async function waitUntil<T>(condition: () => T | Promise<T>, o: WaitOptions): Promise<Truthy<T>> {
  const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastError: unknown;
  for (;;) {
    try {
      last = await within(Promise.resolve().then(condition), {
        what: `a check of ${o.what} to answer`,
        timeoutMs: Math.max(1, deadline - Date.now()),
      });
      lastError = undefined;
      if (last) return last as Truthy<T>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) break;
    await sleep(Math.min(o.intervalMs ?? DEFAULT_INTERVAL_MS, Math.max(0, deadline - Date.now())));
  }
  const seen = [lastError !== undefined ? `last error: ${describe(lastError)}` : `last value: ${describe(last)}`];
  if (o.show) seen.push(describe(attempt(o.show)));
  throw new WaitTimeoutError(o.what, timeoutMs, last, `; ${seen.join('; ')}`, lastError !== undefined ? { cause: lastError } : undefined);
}

/** `promise`, or a WaitTimeoutError naming `what` if it has not settled in time. */
export function within<T>(promise: Promise<T>, o: { what: string; timeoutMs: number }): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new WaitTimeoutError(o.what, o.timeoutMs, undefined, '')), o.timeoutMs);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

function attempt(fn: () => unknown): unknown {
  try {
    return fn();
  } catch (err) {
    return err;
  }
}

function describe(value: unknown): string {
  if (value instanceof Error) return value.message;
  const text = typeof value === 'string' ? value : inspect(value, { depth: 4, breakLength: Infinity });
  return text.length > 4_000 ? `…${text.slice(-4_000)}` : text;
}
