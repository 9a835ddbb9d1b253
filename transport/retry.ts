/**
 * Retry policy of the client side of the wire: calls made to the control
 * plane (the agent's stream, the CLI's calls) and between peers. Which gRPC
 * statuses are worth the same call again, and the one backoff every retry
 * loop waits with (the control plane's own store calls have their policy in
 * control-plane/store/retry.ts, built on this Backoff).
 */
import { status as Status } from '@grpc/grpc-js';
import { causeChain } from '../proto/cause.js';

/**
 * Codes after which the same call may well succeed: the server went away
 * (restart, failover) or the call was cut mid-way. Anything else (NOT_FOUND,
 * INVALID_ARGUMENT, ...) would fail the same way again.
 */
const RETRYABLE_CODES: ReadonlySet<number> = new Set([Status.UNAVAILABLE, Status.INTERNAL, Status.ABORTED, Status.CANCELLED]);

/**
 * Codes by which a server refuses the caller for good: its credentials or
 * its identity are wrong, and only the operator can fix that. A client that
 * must stay connected (an agent, a log follower) keeps retrying everything
 * else and stops on these.
 */
const REFUSED_CODES: ReadonlySet<number> = new Set([Status.UNAUTHENTICATED, Status.PERMISSION_DENIED, Status.INVALID_ARGUMENT]);

/**
 * The code by which a control plane says another live session holds this
 * agent's identity (ALREADY_EXISTS). Not a refusal: that session is usually
 * this agent's own previous one, on a connection or a peer not yet known to
 * be dead (a killed peer's directory entry lasts until its lease expires).
 * The agent asks again soon and steadily, without growing its backoff, so it
 * is back within moments of the old session going.
 */
export const SESSION_BUSY_CODE: number = Status.ALREADY_EXISTS;

/** How long an agent waits before asking again after SESSION_BUSY_CODE: 250 ms, jittered by half. */
export const SESSION_BUSY_RETRY_MS = 250;

/** True for a gRPC status a retry may cure (see RETRYABLE_CODES). */
export const isRetryableCode = (code: number): boolean => RETRYABLE_CODES.has(code);

/** True for a gRPC status that refuses the caller for good (see REFUSED_CODES). */
export const isRefusedCode = (code: number): boolean => REFUSED_CODES.has(code);

/** The gRPC status of a failed call: the `code` of `err` (a grpc-js ServiceError) or of the nearest error in its cause chain with one. */
export function statusCode(err: unknown): number | undefined {
  for (const e of causeChain(err)) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'number') return code;
  }
  return undefined;
}

/** True when `err` is a failed call whose status a retry may cure. */
export function isRetryableStatus(err: unknown): boolean {
  const code = statusCode(err);
  return code !== undefined && isRetryableCode(code);
}

/** True when `err` is a failed call by which the server refused the caller for good. */
export function isRefusal(err: unknown): boolean {
  const code = statusCode(err);
  return code !== undefined && isRefusedCode(code);
}

export interface BackoffOptions {
  /** The first wait's ceiling, in ms; it doubles with each failure. */
  baseMs: number;
  /** The largest ceiling, in ms. */
  capMs: number;
  /**
   * How much of each wait is random. `half` (default): between half the
   * ceiling and the ceiling, so clients failing together spread out and none
   * retries at once; `full`: between 0 and the ceiling; `none`: the ceiling.
   */
  jitter?: 'half' | 'full' | 'none';
  /** Default Math.random; tests pass their own. */
  random?: () => number;
}

/** Past this many doublings the ceiling is the cap for any sane base and cap. */
const MAX_DOUBLINGS = 30;

/** Exponential backoff with a cap and jitter: `next()` after each failure, `reset()` after a success. */
export class Backoff {
  private failures = 0;

  constructor(private readonly options: BackoffOptions) {}

  /** The wait before the next try, in whole ms; counts one more failure. */
  next(): number {
    const { baseMs, capMs, jitter = 'half', random = Math.random } = this.options;
    const ceiling = Math.min(capMs, baseMs * 2 ** this.failures);
    this.failures = Math.min(this.failures + 1, MAX_DOUBLINGS);
    if (jitter === 'none') return ceiling;
    if (jitter === 'full') return Math.round(ceiling * random());
    return Math.round(ceiling / 2 + (ceiling / 2) * random());
  }

  /** Back to the shortest wait. */
  reset(): void {
    this.failures = 0;
  }
}

/** Sleeps `ms` or until the signal aborts, whichever is first; resolves either way, and leaves no timer or listener behind. */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
