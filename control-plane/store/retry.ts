/**
 * Retry policy of the control plane's own store calls: which failures are
 * worth another try, and how long each retrying caller waits and for how
 * long, in one table. Every wait comes from the one Backoff
 * (transport/retry.ts, which also holds the client side's policy).
 *
 *   caller                          retries                         waits
 *   jobs/writer.ts, a job write     store unavailable               50 ms doubling to 1 s, for up to 10 s
 *   etcd-rpc.ts, a raw etcd call    UNAVAILABLE (never sent)        50, 100, 200 ms, next endpoint each time
 *   etcd.ts, etcd3's own calls      etcd3's recoverable errors      3 times, up to 50/100/200 ms (full jitter)
 *   etcd-watch.ts, a watch stream   any break, until closed         100 ms doubling to 2 s, half jitter
 *   etcd-lease.ts, keepalives       any break, until lost           250 ms
 *   etcd-lease.ts, a lease grant    anything but unavailable        3 tries, a new id each, at once
 *   mesh/watched-prefix.ts          any failed re-read, until closed at once, then 100 ms doubling to 2 s
 *   mesh/election.ts                any failed campaign             500 ms
 */
import { status as GrpcStatus } from '@grpc/grpc-js';
import { DelegateBackoff, handleWhen, noop, retry } from 'cockatiel';
import { ClientClosedError, isRecoverableError, type IOptions } from 'etcd3';
import { Backoff, delay, type BackoffOptions } from '../../transport/retry.js';
import { isStoreUnavailable } from './errors.js';

/** How a caller that awaits its retries (`retryStore`) retries. */
export interface RetryPolicy {
  /** Which failures are worth another try. */
  retryable: (err: unknown) => boolean;
  backoff: BackoffOptions;
  /** Gives up once the next wait would end later than this long after the first try. */
  windowMs?: number;
  /** Gives up after this many retries. */
  retries?: number;
}

/**
 * A store failure a retry may cure: the store is unreachable (an etcd
 * restart, a leader change) or was closed under the caller.
 */
export const isStoreRetryable = (err: unknown): boolean => isStoreUnavailable(err);

/** gRPC codes meaning etcd could not be reached or could not answer in time (raw calls, `etcd-rpc`). */
const ETCD_UNAVAILABLE_CODES: ReadonlySet<number> = new Set([GrpcStatus.UNAVAILABLE, GrpcStatus.DEADLINE_EXCEEDED]);

/**
 * An etcd failure that is connection trouble, which `translateError` turns
 * into StoreUnavailableError (and so `isStoreRetryable`).
 */
export function isEtcdUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if ('code' in err && ETCD_UNAVAILABLE_CODES.has(err.code as number)) return true;
  // cockatiel (etcd3's fault handling) marks an open circuit with this property, not a class we can import.
  return isRecoverableError(err) || err instanceof ClientClosedError || 'isBrokenCircuitError' in err;
}

/**
 * A raw call refused because no connection could be made: the request never
 * left, so it is safe to send again whatever it was. (A deadline is not: the
 * request may have been applied.)
 */
export const isEtcdUnsent = (err: unknown): boolean => err instanceof Error && (err as { code?: unknown }).code === GrpcStatus.UNAVAILABLE;

/** A job write (jobs/writer.ts) rides out a brief store outage: an etcd restart, a leader change. */
export const JOB_WRITE: RetryPolicy = {
  retryable: isStoreRetryable,
  backoff: { baseMs: 50, capMs: 1_000, jitter: 'none' },
  windowMs: 10_000,
};

/** A raw etcd call (etcd-rpc.ts) that never left: an etcd restart costs a pause, not an error. */
export const ETCD_RESEND: RetryPolicy = {
  retryable: isEtcdUnsent,
  backoff: { baseMs: 50, capMs: 200, jitter: 'none' },
  retries: 3,
};

/** The calls made through etcd3's client (all but etcd-rpc.ts's) retry through cockatiel, the hook etcd3 offers. */
const ETCD3_CALL: RetryPolicy = {
  retryable: (err) => err instanceof Error && isRecoverableError(err),
  backoff: { baseMs: 50, capMs: 400, jitter: 'full' },
  retries: 3,
};

/** A broken etcd watch stream (etcd-watch.ts) is reopened until the watch is closed; reset once a response arrives. */
export const WATCH_RECONNECT: BackoffOptions = { baseMs: 100, capMs: 2_000, jitter: 'half' };

/**
 * A broken lease keepalive stream (etcd-lease.ts) is reopened this soon, not
 * at the next ttl/3 tick: every moment without a keepalive comes out of the
 * lease's TTL.
 */
export const KEEPALIVE_RETRY_MS = 250;

/** Lease grants tried (etcd-lease.ts), each with a new random id (etcd refuses a duplicate); no more once etcd is unavailable. */
export const LEASE_GRANT_TRIES = 3;

/** A watched prefix (mesh/watched-prefix.ts) whose re-read failed is read again until closed; reset by a good one. */
export const RESYNC: BackoffOptions = { baseMs: 100, capMs: 2_000, jitter: 'none' };

/** A failed campaign (mesh/election.ts) is tried again, a flat 500 ms later, for as long as the peer campaigns. */
export const CAMPAIGN_RETRY: BackoffOptions = { baseMs: 500, capMs: 500, jitter: 'none' };

/**
 * Runs `fn`, and again after a backoff while it fails with what the policy
 * retries, within its window and count; then throws the last failure.
 * `onRetry` hears each failure that is retried and the wait before the next try.
 */
export async function retryStore<T>(
  fn: () => Promise<T>,
  policy: RetryPolicy,
  onRetry?: (err: unknown, waitMs: number) => void,
): Promise<T> {
  const backoff = new Backoff(policy.backoff);
  const until = policy.windowMs === undefined ? Infinity : Date.now() + policy.windowMs;
  for (let retries = 0; ; retries++) {
    try {
      return await fn();
    } catch (err) {
      if (!policy.retryable(err) || retries >= (policy.retries ?? Infinity)) throw err;
      const wait = backoff.next();
      if (Date.now() + wait > until) throw err;
      onRetry?.(err, wait);
      await delay(wait);
    }
  }
}

/**
 * etcd3's fault handling. Its default opens a per-host circuit breaker for
 * 5 s after 3 errors: after a sub-second etcd restart that refuses lease
 * keepalives for longer than a short lease lives, and every peer loses its
 * lease. Instead: no breaker, and a few quick retries of recoverable errors
 * (ETCD3_CALL), so calls go through the moment etcd is back; callers decide
 * beyond that. Each call's waits come from a Backoff of its own.
 */
export const ETCD3_FAULT_HANDLING: IOptions['faultHandling'] = {
  host: () => noop,
  global: retry(handleWhen(ETCD3_CALL.retryable), {
    maxAttempts: ETCD3_CALL.retries,
    backoff: new DelegateBackoff<unknown, Backoff>((_context, backoff = new Backoff(ETCD3_CALL.backoff)) => ({
      delay: backoff.next(),
      state: backoff,
    })),
  }),
};
