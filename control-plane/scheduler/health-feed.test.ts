import { describe, expect, it } from 'vitest';
import { FailureCategory, JobSpec } from '../../proto/gen/runmesh/v1/job.js';
import { HealthTracker } from '../../routing/index.js';
import { assign, finish, promote } from '../jobs/lifecycle.js';
import { queuedRecord, type JobRecord } from '../jobs/record.js';
import { validateSpec } from '../jobs/validate.js';
import { HealthFeed } from './health-feed.js';

const F = FailureCategory;
const t0 = new Date('2026-12-01T12:00:00Z');

/** Ends `attempts` attempts of one job on `agent` with `failure`, feeding every write to the feed. */
function failOn(feed: HealthFeed, agent: string, failure: FailureCategory, attempts: number): void {
  const r: JobRecord = queuedRecord(
    `j_00000000000000${failure}feed`,
    validateSpec(JobSpec.fromPartial({ argv: ['x'], maxAttempts: attempts })),
    t0,
    1,
  );
  let rev = 1;
  const observe = (): void => feed.observe({ record: r, modRevision: rev++ });
  observe();
  for (let n = 1; n <= attempts; n++) {
    const at = new Date(t0.getTime() + n * 120_000);
    if (n > 1) {
      promote(r, at); // its own write: the backoff's end (QUEUED again, still numbered n - 1)
      observe();
    }
    assign(r, agent, at);
    observe();
    finish(r, n, { exitCode: -1, failure, message: 'x', logRecords: 0 }, at);
    observe();
  }
}

describe('HealthFeed', () => {
  it('never counts an out-of-memory kill against the agent (the job asked for too little), but counts an infrastructure failure', () => {
    const health = new HealthTracker({ failureThreshold: 3, coolDownMs: 3_600_000 });
    const feed = new HealthFeed(health);
    failOn(feed, 'oom-host', F.FAILURE_CATEGORY_OUT_OF_MEMORY, 5);
    failOn(feed, 'bad-host', F.FAILURE_CATEGORY_COULD_NOT_START, 5);
    const later = t0.getTime() + 11 * 60_000;
    expect(health.state('oom-host', later)).toBe('closed');
    expect(health.state('bad-host', later)).not.toBe('closed');
  });

  it('counts each attempt once: the write that ends its backoff is not another failure of the agent', () => {
    const health = new HealthTracker({ failureThreshold: 3, coolDownMs: 3_600_000 });
    const feed = new HealthFeed(health);
    failOn(feed, 'twice-lost', F.FAILURE_CATEGORY_AGENT_LOST, 2);
    expect(health.state('twice-lost', t0.getTime() + 5 * 60_000)).toBe('closed');
    failOn(feed, 'twice-lost', F.FAILURE_CATEGORY_COULD_NOT_START, 1);
    expect(health.state('twice-lost', t0.getTime() + 5 * 60_000)).toBe('open');
  });
});
