/** The retry policy's submit flags, and the bulk --filter of jobs retry|cancel. */
import { describe, expect, it } from 'vitest';
import { JobState } from '../proto/gen/runmesh/v1/job.js';
import { CANCEL, checkTargets, parseJobFilter, RETRY } from './commands/jobs-bulk.js';
import { isUsage } from './errors.js';
import { buildSpec } from './spec.js';

/** The usage error `fn` throws, as its message; anything else says what happened instead. */
function usageMessage(fn: () => unknown): string {
  try {
    fn();
    return 'no error';
  } catch (err) {
    return isUsage(err) ? (err as Error).message : `not a usage error: ${String(err)}`;
  }
}

describe('submit --retry-backoff, --retry-on, --queue-timeout', () => {
  it('become the spec fields, in milliseconds and seconds', () => {
    expect(buildSpec({ retryBackoff: '5s..5m', retryOn: ['agent_lost,exit:137', 'timeout'], queueTimeout: '30m' }, ['true'])).toMatchObject(
      {
        retryBackoffMinMs: 5000,
        retryBackoffMaxMs: 300_000,
        retryOn: ['agent_lost', 'exit:137', 'timeout'],
        queueTimeoutSeconds: 1800,
      },
    );
    expect(buildSpec({ retryBackoff: '500ms..2s' }, ['true'])).toMatchObject({ retryBackoffMinMs: 500, retryBackoffMaxMs: 2000 });
    expect(buildSpec({ retryBackoff: '30s' }, ['true'])).toMatchObject({ retryBackoffMinMs: 30_000, retryBackoffMaxMs: 30_000 });
    expect(buildSpec({}, ['true'])).toMatchObject({ retryBackoffMinMs: 0, retryBackoffMaxMs: 0, retryOn: [], queueTimeoutSeconds: 0 });
  });

  it('refuses an inverted, empty or unreadable backoff, and a bad queue timeout, naming the flag', () => {
    expect(usageMessage(() => buildSpec({ retryBackoff: '5m..5s' }, ['true']))).toMatch(/^--retry-backoff: need 0 < MIN <= MAX/);
    expect(usageMessage(() => buildSpec({ retryBackoff: '0s..5s' }, ['true']))).toMatch(/^--retry-backoff: need 0 < MIN/);
    expect(usageMessage(() => buildSpec({ retryBackoff: '1s..2s..3s' }, ['true']))).toMatch(/^--retry-backoff: expected MIN..MAX/);
    expect(usageMessage(() => buildSpec({ retryBackoff: 'soon' }, ['true']))).toMatch(/^--retry-backoff: invalid duration "soon"/);
    expect(usageMessage(() => buildSpec({ queueTimeout: 'never' }, ['true']))).toMatch(/^--queue-timeout: invalid duration/);
  });
});

describe('jobs retry|cancel --filter', () => {
  it('reads states (repeated or S1|S2), a name prefix, a tenant and labels', () => {
    expect(parseJobFilter('state=failed|dead, name-prefix=nightly-,tenant=t1,label=os=linux,label=gpu,state=timed_out')).toEqual({
      states: [JobState.JOB_STATE_FAILED, JobState.JOB_STATE_DEAD, JobState.JOB_STATE_TIMED_OUT],
      namePrefix: 'nightly-',
      tenant: 't1',
      labels: 'os=linux,gpu',
    });
  });

  it('refuses an empty filter, an unknown key or state, naming them', () => {
    expect(usageMessage(() => parseJobFilter(' , '))).toMatch(/--filter: name at least one of/);
    expect(usageMessage(() => parseJobFilter('owner=me'))).toMatch(/--filter: unknown key "owner"/);
    expect(usageMessage(() => parseJobFilter('state=zombie'))).toMatch(/--filter state: unknown value "zombie"/);
  });

  it('takes ids or a filter, and --yes only with a filter', () => {
    expect(usageMessage(() => checkTargets(RETRY, ['j_1'], { server: 's', filter: 'state=dead' }))).toMatch(/ids or --filter, not both/);
    expect(usageMessage(() => checkTargets(CANCEL, [], { server: 's' }))).toMatch(/give a job id, or --filter/);
    expect(usageMessage(() => checkTargets(RETRY, ['j_1'], { server: 's', yes: true }))).toMatch(/--yes goes with --filter/);
    expect(() => checkTargets(RETRY, [], { server: 's', filter: 'state=dead', yes: true })).not.toThrow();
  });
});
