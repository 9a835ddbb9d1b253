/** The job tracker on a real (embedded) store: deletes seen on its watch. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { JobSpec, JobState } from '../../proto/gen/runmesh/v1/job.js';
import { openEmbeddedStore } from '../store/embedded.js';
import { JobRepo } from './repo.js';
import { JobTracker } from './tracker.js';
import { validateSpec } from './validate.js';
import { waitUntil } from '../../test/support/wait.js';

let cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

describe('JobTracker', () => {
  it('drops a live job whose record is deleted, tells listeners, and does not bring it back for a late answer', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'runmesh-tracker-'));
    const store = await openEmbeddedStore({ dir });
    const repo = new JobRepo(store);
    const tracker = new JobTracker(repo, pino({ level: 'silent' }));
    cleanup.push(
      () => rm(dir, { recursive: true, force: true }),
      () => store.close(),
      () => tracker.close(),
    );
    const [v] = await repo.storeNew([repo.draft(validateSpec(JobSpec.fromPartial({ argv: ['true'] })), new Date())]);
    await tracker.start();
    expect(tracker.get(v!.record.job.id)?.record.job.state).toBe(JobState.JOB_STATE_QUEUED);
    expect(tracker.countsByState().get(JobState.JOB_STATE_QUEUED)).toBe(1);
    const deleted: string[] = [];
    tracker.onDeleted((id) => deleted.push(id));

    await store.delete(repo.key(v!.record.job.id));
    await waitUntil(() => deleted.length > 0, { what: 'the delete to be seen', timeoutMs: 5_000 });
    expect(deleted).toEqual([v!.record.job.id]);
    expect(tracker.size).toBe(0);
    expect(tracker.countsByState().get(JobState.JOB_STATE_QUEUED)).toBe(0);
    tracker.apply(v!); // a write's answer that arrives after the delete
    expect(tracker.size).toBe(0);
  });
});
