import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalSpec, signSpec, untrusted } from '../../proto/job-signature.js';
import { FailureCategory, JobSpec, JobState } from '../../proto/gen/runmesh/v1/job.js';
import { ValidationError } from './errors.js';
import { assign, countedAttempts, finish, lost, promote, queueDeadline, queueTimedOut, redrive } from './lifecycle.js';
import { backoffMs, DEFAULT_BACKOFF, parseRetryOn, retries, retryPolicyOf } from './retry-policy.js';
import { cloneRecord, queuedRecord, type JobRecord } from './record.js';
import { validateSpec } from './validate.js';

const F = FailureCategory;
const S = JobState;
const now = new Date('2026-12-01T12:00:00Z');

const policy = (spec: Partial<JobSpec>) => retryPolicyOf(validateSpec(JobSpec.fromPartial({ argv: ['true'], ...spec })));
const record = (spec: Partial<JobSpec>): JobRecord =>
  queuedRecord('j_00000000000000retry', validateSpec(JobSpec.fromPartial({ argv: ['true'], ...spec })), now, 1);
/** Past any backoff: the WAITING job is QUEUED again. */
const later = new Date(now.getTime() + 24 * 3600 * 1000);
const failed = (failure: FailureCategory, exitCode = -1) => ({ exitCode, failure, message: '', logRecords: 0 });

/** Sweeps the random source over [0, 1]. */
const draws = Array.from({ length: 101 }, (_, i) => i / 100);

describe('backoff', () => {
  it('keeps the default of before retry policies: 1 s doubling to 60 s, ±20%', () => {
    const p = policy({});
    expect(p).toMatchObject({ ...DEFAULT_BACKOFF, ownBackoff: false });
    expect(backoffMs(p, 1, () => 0)).toBe(800);
    expect(backoffMs(p, 1, () => 1)).toBe(1200);
    expect(backoffMs(p, 3, () => 0.5)).toBe(4000);
    expect(backoffMs(p, 30, () => 1)).toBe(72_000);
  });

  it('stays within the job own min and max, grows exponentially and is jittered', () => {
    const p = policy({ retryBackoffMinMs: 5000, retryBackoffMaxMs: 300_000 });
    for (let n = 1; n <= 30; n++) {
      const spread = draws.map((r) => backoffMs(p, n, () => r));
      expect(Math.min(...spread)).toBeGreaterThanOrEqual(5000);
      expect(Math.max(...spread)).toBeLessThanOrEqual(300_000);
      // Jitter: never one fixed value for a given retry.
      expect(new Set(spread).size).toBeGreaterThan(1);
    }
    // Centred on 5 s · 2^(n-1) until the cap: 5, 10, 20, 40 s ...
    expect([1, 2, 3, 4].map((n) => backoffMs(p, n, () => 0.5))).toEqual([5500, 10_000, 20_000, 40_000]);
    expect(backoffMs(p, 12, () => 0.5)).toBe(270_000);
  });

  it('is a fixed wait when min equals max', () => {
    const p = policy({ retryBackoffMinMs: 2000, retryBackoffMaxMs: 2000 });
    expect(new Set(draws.flatMap((r) => [1, 5].map((n) => backoffMs(p, n, () => r))))).toEqual(new Set([2000]));
  });

  it('is refused at submit when half given, inverted, or over 24 h, naming the field', () => {
    const field = (spec: Partial<JobSpec>): string | undefined => {
      try {
        policy(spec);
        return undefined;
      } catch (err) {
        return err instanceof ValidationError ? err.field : 'not a validation error';
      }
    };
    expect(field({ retryBackoffMaxMs: 1000 })).toBe('spec.retry_backoff_min_ms');
    expect(field({ retryBackoffMinMs: 1000 })).toBe('spec.retry_backoff_max_ms');
    expect(field({ retryBackoffMinMs: 2000, retryBackoffMaxMs: 1000 })).toBe('spec.retry_backoff_max_ms');
    expect(field({ retryBackoffMinMs: 1, retryBackoffMaxMs: 25 * 3600 * 1000 })).toBe('spec.retry_backoff_max_ms');
    expect(field({ queueTimeoutSeconds: 8 * 24 * 3600 })).toBe('spec.queue_timeout_seconds');
    expect(field({ retryOn: ['agent_lost', 'agent_lots'] })).toBe('spec.retry_on[1]');
    expect(field({ retryOn: ['exit:0'] })).toBe('spec.retry_on[0]');
    expect(field({ retryOn: ['cancelled'] })).toBe('spec.retry_on[0]');
    expect(field({ retryOn: ['agent_lost', 'exit:137', 'timeout'] })).toBeUndefined();
  });
});

describe('retry_on', () => {
  it('names categories lower-cased without their prefix, or exit codes, and says why a name is refused', () => {
    expect(parseRetryOn('agent_lost')).toEqual({ category: F.FAILURE_CATEGORY_AGENT_LOST });
    expect(parseRetryOn('exit:137')).toEqual({ exitCode: 137 });
    expect(parseRetryOn('AGENT_LOST')).toMatch(/unknown failure category "AGENT_LOST" \(one of exit_code, timeout, agent_lost/);
    expect(parseRetryOn('not_runnable')).toMatch(/never retried/);
    expect(parseRetryOn('preempted')).toMatch(/always queued again/);
    expect(parseRetryOn('exit:256')).toMatch(/1-255/);
  });

  it('by default retries every failure but cancelled, not runnable, untrusted, queue timeout and artifacts', () => {
    const p = policy({});
    for (const f of [
      F.FAILURE_CATEGORY_EXIT_CODE,
      F.FAILURE_CATEGORY_TIMEOUT,
      F.FAILURE_CATEGORY_AGENT_LOST,
      F.FAILURE_CATEGORY_OUT_OF_MEMORY,
    ])
      expect({ f, retried: retries(p, f, 1) }).toEqual({ f, retried: true });
    for (const f of [
      F.FAILURE_CATEGORY_CANCELLED,
      F.FAILURE_CATEGORY_NOT_RUNNABLE,
      F.FAILURE_CATEGORY_UNTRUSTED,
      F.FAILURE_CATEGORY_QUEUE_TIMEOUT,
      F.FAILURE_CATEGORY_ARTIFACTS,
    ])
      expect({ f, retried: retries(p, f, 1) }).toEqual({ f, retried: false });
    expect(retries(policy({ retryOn: ['artifacts'] }), F.FAILURE_CATEGORY_ARTIFACTS, 0)).toBe(true);
  });

  it('retries only what it names: a category, or a process that exited (or was OOM-killed) with a named code', () => {
    const p = policy({ retryOn: ['agent_lost', 'exit:137'] });
    expect(retries(p, F.FAILURE_CATEGORY_AGENT_LOST, -1)).toBe(true);
    expect(retries(p, F.FAILURE_CATEGORY_EXIT_CODE, 137)).toBe(true);
    expect(retries(p, F.FAILURE_CATEGORY_OUT_OF_MEMORY, 137)).toBe(true);
    expect(retries(p, F.FAILURE_CATEGORY_EXIT_CODE, 1)).toBe(false);
    expect(retries(p, F.FAILURE_CATEGORY_TIMEOUT, 137)).toBe(false);
    expect(retries(p, F.FAILURE_CATEGORY_DISK_FULL, -1)).toBe(false);
  });

  it('ends a job whose failure it does not name FAILED at once, attempts left or not; a named one waits to retry', () => {
    const r = record({ maxAttempts: 3, retryOn: ['agent_lost'] });
    assign(r, 'a1', now);
    expect(lost(r, 1, 'gone', now)).toBe(true);
    expect(r.job.state).toBe(S.JOB_STATE_WAITING);
    promote(r, later);
    assign(r, 'a2', now);
    expect(finish(r, 2, failed(F.FAILURE_CATEGORY_EXIT_CODE, 1), now)).toBe(true);
    expect(r.job.state).toBe(S.JOB_STATE_FAILED);
    expect(countedAttempts(r)).toBe(2);
  });
});

describe('host exclusion', () => {
  it('records the agents where an attempt failed for an infrastructure reason, once each, never for the job own failures', () => {
    const r = record({ maxAttempts: 5 });
    const step = (agent: string, outcome: ReturnType<typeof failed>): void => {
      promote(r, later);
      assign(r, agent, now);
      finish(r, r.job.attempt, outcome, now);
    };
    const shared = cloneRecord(r);
    step('a1', failed(F.FAILURE_CATEGORY_AGENT_LOST));
    step('a2', failed(F.FAILURE_CATEGORY_EXIT_CODE, 1));
    step('a1', failed(F.FAILURE_CATEGORY_DISK_FULL));
    step('a3', failed(F.FAILURE_CATEGORY_COULD_NOT_START));
    expect(r.job.avoidedAgents).toEqual(['a1', 'a3']);
    // The copy a write started from is not changed under it.
    expect(shared.job.avoidedAgents).toEqual([]);
  });
});

describe('queue timeout', () => {
  it('times out a job queued too long, from when it last became QUEUED, and only then', () => {
    const r = record({ queueTimeoutSeconds: 60 });
    expect(queueDeadline(r)).toBe(now.getTime() + 60_000);
    expect(queueTimedOut(r, new Date(now.getTime() + 59_999))).toBe(false);
    expect(queueTimedOut(r, new Date(now.getTime() + 60_000))).toBe(true);
    expect(r.job).toMatchObject({ state: S.JOB_STATE_TIMED_OUT, failure: F.FAILURE_CATEGORY_QUEUE_TIMEOUT });
    expect(r.job.timeline.at(-1)?.reason).toMatch(/queue timeout: no agent took it within 60s/);
    expect(queueDeadline(record({}))).toBeUndefined();
  });

  it('does not apply to a job an agent holds', () => {
    const r = record({ queueTimeoutSeconds: 60 });
    assign(r, 'a1', now);
    expect(queueTimedOut(r, new Date(now.getTime() + 3_600_000))).toBe(false);
  });
});

describe('retry (re-drive)', () => {
  it('queues an ended job again with a new attempt sequence, its history kept and max_attempts counted afresh', () => {
    const r = record({ maxAttempts: 2 });
    assign(r, 'a1', now);
    lost(r, 1, 'gone', now);
    promote(r, later);
    assign(r, 'a2', now);
    finish(r, 2, failed(F.FAILURE_CATEGORY_EXIT_CODE, 3), now);
    expect(r.job.state).toBe(S.JOB_STATE_DEAD);
    const history = r.job.timeline.length;
    expect(redrive(r, 'retried by ops', now)).toBe(true);
    expect(r.job).toMatchObject({ state: S.JOB_STATE_QUEUED, redrives: 1, sequenceStart: 3, avoidedAgents: [], failure: 0, exitCode: 0 });
    expect(r.job.attempts).toHaveLength(2);
    expect(r.job.timeline).toHaveLength(history + 1);
    expect(countedAttempts(r)).toBe(0);
    assign(r, 'a3', now);
    expect(r.job.attempt).toBe(3);
    finish(r, 3, failed(F.FAILURE_CATEGORY_EXIT_CODE, 3), now);
    // Attempt 3 is the new sequence's first of two: it retries.
    expect(r.job.state).toBe(S.JOB_STATE_WAITING);
  });

  it('refuses a job that succeeded or has not ended', () => {
    const r = record({});
    expect(redrive(r, 'x', now)).toBe(false);
    assign(r, 'a1', now);
    finish(r, 1, failed(F.FAILURE_CATEGORY_UNSPECIFIED, 0), now);
    expect(r.job.state).toBe(S.JOB_STATE_SUCCEEDED);
    expect(redrive(r, 'x', now)).toBe(false);
  });
});

describe('signed jobs', () => {
  it('cover the retry policy: a signed spec stored as submitted still verifies, and one changed after signing does not', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const keys = new Map([['k1', publicKey]]);
    const fields = { argv: ['make'], retryOn: ['agent_lost', 'exit:137'], retryBackoffMinMs: 5000, retryBackoffMaxMs: 300_000 };
    // As runmesh submit --sign-key does: resolved, then signed; the control plane resolves it again at submit.
    const signed = signSpec(validateSpec(JobSpec.fromPartial({ ...fields, queueTimeoutSeconds: 60 })), { kid: 'k1', key: privateKey });
    const stored = validateSpec(signed);
    expect(untrusted(stored, keys)).toBeUndefined();
    expect(untrusted({ ...stored, retryOn: ['agent_lost'] }, keys)).toMatch(/changed after signing/);
    expect(untrusted({ ...stored, queueTimeoutSeconds: 0 }, keys)).toMatch(/changed after signing/);
    // A spec without a policy has none of the fields in its canonical form: it signs as before they existed.
    expect(canonicalSpec(validateSpec(JobSpec.fromPartial({ argv: ['make'] }))).toString()).not.toMatch(/retry|queueTimeout/);
  });
});
