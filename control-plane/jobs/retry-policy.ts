/**
 * A job's retry policy, decided in one place: which failures are retried
 * (`retry_on`), how long the job waits before its next attempt (backoff), and
 * which failures make later attempts avoid their agent (host exclusion). The
 * spec's fields stay as submitted (absent means the default), so a spec that
 * names no policy reads, and signs, as before; `retryPolicyOf` resolves them.
 */
import { FailureCategory, type JobSpec } from '../../proto/gen/runmesh/v1/job.js';
import { ValidationError } from './errors.js';

const F = FailureCategory;

export const RETRY_LIMITS = {
  /** The longest backoff a job may ask for. */
  backoffMaxMs: 24 * 3600 * 1000,
  retryOnEntries: 32,
  /** A queue timeout as long as the longest run timeout (validate.ts LIMITS.timeoutSeconds). */
  queueTimeoutSeconds: 7 * 24 * 3600,
} as const;

/** Without --retry-backoff: 1 s doubling to 60 s, ±20%, as before retry policies existed. */
export const DEFAULT_BACKOFF = { minMs: 1000, maxMs: 60_000 } as const;

/** Failures of the agent's host, not of the job: counted against its health, and avoided by the job's next attempts. */
export const INFRASTRUCTURE_FAILURES: ReadonlySet<FailureCategory> = new Set([
  F.FAILURE_CATEGORY_COULD_NOT_START,
  F.FAILURE_CATEGORY_AGENT_LOST,
  F.FAILURE_CATEGORY_DISK_FULL,
]);

/** `FAILURE_CATEGORY_AGENT_LOST` → `agent_lost`. */
export const categoryName = (c: FailureCategory): string =>
  (FailureCategory[c] ?? String(c)).replace(/^FAILURE_CATEGORY_/, '').toLowerCase();

/** What retry_on may name: the categories a retry can follow. */
const RETRYABLE: ReadonlyMap<string, FailureCategory> = new Map(
  [
    F.FAILURE_CATEGORY_EXIT_CODE,
    F.FAILURE_CATEGORY_TIMEOUT,
    F.FAILURE_CATEGORY_AGENT_LOST,
    F.FAILURE_CATEGORY_COULD_NOT_START,
    F.FAILURE_CATEGORY_DISK_FULL,
    F.FAILURE_CATEGORY_OUT_OF_MEMORY,
    F.FAILURE_CATEGORY_ARTIFACTS,
  ].map((c) => [categoryName(c), c]),
);

/** Categories retry_on may not name, and why. */
const NOT_RETRYABLE: ReadonlyMap<FailureCategory, string> = new Map([
  [F.FAILURE_CATEGORY_CANCELLED, 'a cancelled job is never retried'],
  [F.FAILURE_CATEGORY_NOT_RUNNABLE, 'another attempt would fail the same way, so it is never retried'],
  [F.FAILURE_CATEGORY_UNTRUSTED, 'an untrusted spec is never retried'],
  [F.FAILURE_CATEGORY_QUEUE_TIMEOUT, 'a job that timed out in the queue ends there'],
  [F.FAILURE_CATEGORY_PREEMPTED, 'a preempted attempt is always queued again, without using up a retry'],
  [F.FAILURE_CATEGORY_NOT_DELIVERED, 'an undelivered attempt is always queued again, without using up a retry'],
]);

/**
 * Failures retried when retry_on is empty: every one but these. Artifacts
 * that could not be stored (over a limit, as a rule) would fail again: only
 * `retry_on: artifacts` retries them.
 */
const NEVER_BY_DEFAULT: ReadonlySet<FailureCategory> = new Set([
  F.FAILURE_CATEGORY_CANCELLED,
  F.FAILURE_CATEGORY_NOT_RUNNABLE,
  F.FAILURE_CATEGORY_UNTRUSTED,
  F.FAILURE_CATEGORY_QUEUE_TIMEOUT,
  F.FAILURE_CATEGORY_ARTIFACTS,
]);

const EXIT = /^exit:(\d{1,3})$/;

/** One retry_on entry, read: a category, or an exit code; a string saying why it is refused. */
export function parseRetryOn(entry: string): { category: FailureCategory } | { exitCode: number } | string {
  const exit = EXIT.exec(entry);
  if (exit) {
    const code = Number(exit[1]);
    return code >= 1 && code <= 255 ? { exitCode: code } : `exit code ${code} is not one a failed process ends with (1-255)`;
  }
  const category = RETRYABLE.get(entry);
  if (category !== undefined) return { category };
  const known = (Object.values(F) as Array<string | number>).find((v) => typeof v === 'number' && categoryName(v) === entry);
  const why = known === undefined ? undefined : NOT_RETRYABLE.get(known as FailureCategory);
  if (why) return `${entry}: ${why}`;
  return `unknown failure category "${entry.slice(0, 64)}" (one of ${[...RETRYABLE.keys()].join(', ')}, or exit:N)`;
}

/** What a spec's retry fields come to. */
export interface RetryPolicy {
  readonly minMs: number;
  readonly maxMs: number;
  /** True when the job set its own backoff: delays are then kept within [minMs, maxMs]. */
  readonly ownBackoff: boolean;
  /** undefined: the default (every failure but cancelled, not runnable, untrusted, queue timeout, artifacts). */
  readonly on?: { readonly categories: ReadonlySet<FailureCategory>; readonly exitCodes: ReadonlySet<number> };
}

/** The policy of a (validated) spec. */
export function retryPolicyOf(spec: Pick<JobSpec, 'retryBackoffMinMs' | 'retryBackoffMaxMs' | 'retryOn'>): RetryPolicy {
  const ownBackoff = spec.retryBackoffMinMs > 0;
  const backoff = ownBackoff ? { minMs: spec.retryBackoffMinMs, maxMs: spec.retryBackoffMaxMs } : DEFAULT_BACKOFF;
  if (spec.retryOn.length === 0) return { ...backoff, ownBackoff };
  const categories = new Set<FailureCategory>();
  const exitCodes = new Set<number>();
  for (const entry of spec.retryOn) {
    const p = parseRetryOn(entry);
    if (typeof p === 'string') continue; // refused at submit; a stored spec has none
    if ('category' in p) categories.add(p.category);
    else exitCodes.add(p.exitCode);
  }
  return { ...backoff, ownBackoff, on: { categories, exitCodes } };
}

/** True when the policy retries an attempt that ended with `failure` and `exitCode` (attempts permitting). */
export function retries(policy: RetryPolicy, failure: FailureCategory, exitCode: number): boolean {
  if (!policy.on) return !NEVER_BY_DEFAULT.has(failure);
  if (policy.on.categories.has(failure)) return true;
  const exited = failure === F.FAILURE_CATEGORY_EXIT_CODE || failure === F.FAILURE_CATEGORY_OUT_OF_MEMORY;
  return exited && policy.on.exitCodes.has(exitCode);
}

/**
 * The wait before the next attempt, after `failed` counted failures (1 for
 * the first): base b = min(max, min·2^(failed-1)), drawn uniformly from
 * [0.8 b, 1.2 b]; a job's own backoff keeps it within [min, max].
 */
export function backoffMs(policy: RetryPolicy, failed: number, random: () => number = Math.random): number {
  const base = Math.min(policy.maxMs, policy.minMs * 2 ** Math.min(Math.max(0, failed - 1), 40));
  const lo = policy.ownBackoff ? Math.max(policy.minMs, 0.8 * base) : 0.8 * base;
  const hi = policy.ownBackoff ? Math.min(policy.maxMs, 1.2 * base) : 1.2 * base;
  return Math.round(lo + random() * (hi - lo));
}

function check(ok: boolean, field: string, detail: string): void {
  if (!ok) throw new ValidationError(field, detail);
}

/** Submit-time checks of the retry fields and the queue timeout; throws ValidationError naming the field. */
export function validateRetryPolicy(spec: JobSpec, field: string): void {
  const { retryBackoffMinMs: min, retryBackoffMaxMs: max } = spec;
  if (min > 0 || max > 0) {
    check(min > 0, `${field}.retry_backoff_min_ms`, 'give both retry_backoff_min_ms and retry_backoff_max_ms, or neither');
    check(max >= min, `${field}.retry_backoff_max_ms`, `${max} ms is less than retry_backoff_min_ms (${min} ms)`);
    check(max <= RETRY_LIMITS.backoffMaxMs, `${field}.retry_backoff_max_ms`, `exceeds the limit of ${RETRY_LIMITS.backoffMaxMs} ms (24 h)`);
  }
  check(
    spec.retryOn.length <= RETRY_LIMITS.retryOnEntries,
    `${field}.retry_on`,
    `too many entries (${spec.retryOn.length}, limit ${RETRY_LIMITS.retryOnEntries})`,
  );
  spec.retryOn.forEach((entry, i) => {
    const p = parseRetryOn(entry);
    if (typeof p === 'string') throw new ValidationError(`${field}.retry_on[${i}]`, p);
  });
  check(
    spec.queueTimeoutSeconds <= RETRY_LIMITS.queueTimeoutSeconds,
    `${field}.queue_timeout_seconds`,
    `${spec.queueTimeoutSeconds}s exceeds the limit of ${RETRY_LIMITS.queueTimeoutSeconds}s`,
  );
}
