/**
 * The store-kept group limit on a real embedded store: two writers with their
 * own views (an old and a new leader) race for the last slot, a writer whose
 * view is frozen in the past still cannot over-admit, and groups are per tenant.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ConcurrencyConflict, FailureCategory, JobSpec, JobState } from '../../proto/gen/runmesh/v1/job.js';
import { tempDir } from '../../test/support/processes.js';
import { openEmbeddedStore } from '../store/embedded.js';
import type { Store } from '../store/store.js';
import { isValidation } from './errors.js';
import { GroupSlots } from './group-slots.js';
import { assign, finish } from './lifecycle.js';
import { JobRepo } from './repo.js';
import { JobTracker } from './tracker.js';
import { validateSpec } from './validate.js';
import { JobWriter } from './writer.js';

const log = pino({ level: 'silent' });
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** One peer's view: its own tracker, writer and slot guard over the shared store. */
async function peer(store: Store, repo: JobRepo) {
  const tracker = new JobTracker(repo, log);
  await tracker.start();
  cleanups.push(() => tracker.close());
  const writer = JobWriter.forAnyPeer({ repo, tracker, logger: log });
  const slots = new GroupSlots(store, repo, tracker);
  const place = (id: string, agent: string) => writer.write(id, (r) => assign(r, agent, new Date()), slots.guard);
  return { tracker, writer, slots, place };
}

async function setup() {
  const store = await openEmbeddedStore({ dir: await tempDir('runmesh-groups-') });
  cleanups.push(() => store.close());
  const repo = new JobRepo(store);
  const a = await peer(store, repo);
  const submit = async (spec: Partial<JobSpec>) => {
    const draft = repo.draft(validateSpec(JobSpec.fromPartial({ argv: ['true'], concurrencyGroup: 'deploy', ...spec })), new Date());
    return (await a.writer.create([draft]))[0]!.record.job.id;
  };
  const state = async (id: string) => (await repo.mustGet(id)).record.job.state;
  return { store, repo, a, submit, state };
}

describe('GroupSlots', () => {
  it('lets one of two writers racing for the last slot store its assignment', async () => {
    const { store, repo, a, submit, state } = await setup();
    const b = await peer(store, repo);
    const one = await submit({});
    const two = await submit({});
    const results = await Promise.all([a.place(one, 'x'), b.place(two, 'y')]);
    expect(results.filter(Boolean)).toHaveLength(1);
    const states = [await state(one), await state(two)];
    expect(states.filter((s) => s === JobState.JOB_STATE_ASSIGNED)).toHaveLength(1);
    expect(states.filter((s) => s === JobState.JOB_STATE_QUEUED)).toHaveLength(1);
  });

  it('refuses a writer whose view is frozen before the holder was assigned, and admits it once the holder ended', async () => {
    const { store, repo, a, submit, state } = await setup();
    const one = await submit({ concurrency: 1 });
    const two = await submit({ concurrency: 1 });
    const stale = await peer(store, repo);
    await stale.tracker.close(); // its view stops here: both jobs QUEUED
    expect(await a.place(one, 'x')).toBeDefined();
    expect(await stale.place(two, 'y')).toBeUndefined();
    expect(await state(two)).toBe(JobState.JOB_STATE_QUEUED);
    const outcome = { exitCode: 0, failure: FailureCategory.FAILURE_CATEGORY_UNSPECIFIED, message: '', logRecords: 0 };
    expect(await a.writer.write(one, (r) => finish(r, 1, outcome, new Date()))).toBeDefined();
    expect(await stale.place(two, 'y')).toBeDefined();
    expect(await state(two)).toBe(JobState.JOB_STATE_ASSIGNED);
    expect((await a.slots.holders({ tenant: 'default', name: 'deploy', key: 'default/deploy', limit: 1, onConflict: 1 })).holders).toEqual([
      two,
    ]);
  });

  it('admits up to the limit, and keeps tenants apart', async () => {
    const { a, submit } = await setup();
    const ids = [await submit({ concurrency: 2 }), await submit({ concurrency: 2 }), await submit({ concurrency: 2 })];
    const other = await submit({ concurrency: 2, tenant: 'other' });
    const placed = [];
    for (const id of ids) placed.push(await a.place(id, 'x'));
    expect(placed.map(Boolean)).toEqual([true, true, false]);
    expect(await a.place(other, 'x')).toBeDefined();
  });

  it('drops the slot lists of groups no job holds, a page at a time, keeping busy ones and refusing a stale fence', async () => {
    const { store, a, submit } = await setup();
    const outcome = { exitCode: 0, failure: FailureCategory.FAILURE_CATEGORY_UNSPECIFIED, message: '', logRecords: 0 };
    const ids = [];
    for (const g of ['deploy-a', 'deploy-b', 'deploy-c', 'busy']) {
      const id = await submit({ concurrencyGroup: g });
      expect(await a.place(id, 'x')).toBeDefined();
      ids.push(id);
    }
    for (const id of ids.slice(0, 3)) expect(await a.writer.write(id, (r) => finish(r, 1, outcome, new Date()))).toBeDefined();
    const lists = async () => (await store.range('/runmesh/groups/')).kvs.map((kv) => kv.key.slice('/runmesh/groups/'.length));
    expect(await lists()).toEqual(['default/busy', 'default/deploy-a', 'default/deploy-b', 'default/deploy-c']);

    const stale = [{ key: '/runmesh/leader', target: 'createRevision' as const, op: '==' as const, value: 987_654 }];
    expect(await a.slots.dropIdle(stale)).toBe(0);
    expect(await a.slots.dropIdle([], 2)).toBe(1); // busy, deploy-a
    expect(await a.slots.dropIdle([], 2)).toBe(2); // deploy-b, deploy-c
    expect(await lists()).toEqual(['default/busy']);

    // A group dropped is a group never used: the next job takes its slot, and the limit holds again.
    const again = [await submit({ concurrencyGroup: 'deploy-a' }), await submit({ concurrencyGroup: 'deploy-a' })];
    expect([Boolean(await a.place(again[0]!, 'x')), Boolean(await a.place(again[1]!, 'x'))]).toEqual([true, false]);
  });
});

describe('validateSpec, concurrency groups', () => {
  const field = (spec: Partial<JobSpec>): string => {
    try {
      validateSpec(JobSpec.fromPartial({ argv: ['true'], ...spec }));
    } catch (err) {
      if (isValidation(err)) return (err as Error).message;
      throw err;
    }
    return 'valid';
  };

  it('names the field of a bad group, limit or mode', () => {
    expect(field({ concurrencyGroup: 'a b' })).toMatch(/^spec\.concurrency_group: bad group/);
    expect(field({ concurrencyGroup: 'x'.repeat(129) })).toMatch(/^spec\.concurrency_group/);
    expect(field({ concurrencyGroup: 'deploy', concurrency: 0 })).toMatch(/^spec\.concurrency: 0 is out of range/);
    expect(field({ concurrencyGroup: 'deploy', concurrency: 1001 })).toMatch(/^spec\.concurrency: 1001 is out of range/);
    expect(field({ concurrencyGroup: 'deploy', onConflict: 9 as ConcurrencyConflict })).toMatch(/^spec\.on_conflict: unknown mode 9/);
    expect(field({ concurrency: 2 })).toBe('spec.concurrency: only with concurrency_group');
    expect(field({ onConflict: ConcurrencyConflict.CONCURRENCY_CONFLICT_SKIP })).toBe('spec.on_conflict: only with concurrency_group');
    expect(field({ concurrencyGroup: 'deploy/main@v1', concurrency: 1000 })).toBe('valid');
  });

  it('resolves the limit to 1 and the mode to queue', () => {
    const spec = validateSpec(JobSpec.fromPartial({ argv: ['true'], concurrencyGroup: 'deploy' }));
    expect([spec.concurrency, spec.onConflict]).toEqual([1, ConcurrencyConflict.CONCURRENCY_CONFLICT_QUEUE]);
  });
});
