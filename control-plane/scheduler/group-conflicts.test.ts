/** The in-memory group queues and the per-round decisions for each on-conflict mode. */
import { describe, expect, it } from 'vitest';
import { ConcurrencyConflict } from '../../proto/gen/runmesh/v1/job.js';
import type { QueuedJob } from '../../routing/index.js';
import type { GroupRef } from '../jobs/group-slots.js';
import { groupActions } from './group-conflicts.js';
import { GroupQueues } from './group-queues.js';

const C = ConcurrencyConflict;
const ref = (limit = 1, onConflict: ConcurrencyConflict = C.CONCURRENCY_CONFLICT_QUEUE, tenant = 't'): GroupRef => ({
  tenant,
  name: 'deploy',
  key: `${tenant}/deploy`,
  limit,
  onConflict,
});
const job = (id: string, order: number): QueuedJob => ({
  id,
  selector: '',
  resources: { slots: 1, cpuMillis: 0, memoryMb: 0 },
  qos: 'standard',
  tenant: 't',
  priority: 0,
  affinityKey: '',
  strategy: 'spread',
  executor: 'shell',
  order,
});

/** Queues `ids` (in order) into one group and returns what was released to the router. */
function queue(q: GroupQueues, ids: string[], group: GroupRef | ((id: string) => GroupRef), from = 1): string[] {
  for (const [i, id] of ids.entries())
    q.enqueue({ id, order: from + i, group: typeof group === 'function' ? group(id) : group }, job(id, from + i));
  return q.release(ref().key).map((j) => j.id);
}

describe('GroupQueues', () => {
  it('releases first come first served up to the limit, and the next one as a slot frees', () => {
    const q = new GroupQueues();
    expect(queue(q, ['a', 'b', 'c'], ref(2))).toEqual(['a', 'b']);
    q.remove('a');
    q.activate({ id: 'a', order: 1, group: ref(2) });
    expect(q.release(ref().key)).toEqual([]);
    q.remove('a'); // ended
    expect(q.release(ref().key).map((j) => j.id)).toEqual(['c']);
    q.remove('b');
    q.remove('c');
    expect(q.release(ref().key)).toEqual([]);
    expect(q.size).toBe(0);
  });
});

describe('groupActions', () => {
  const ids = (actions: ReturnType<typeof groupActions>, kind: string) => actions.filter((a) => a.kind === kind).map((a) => a.id);

  it('queue: a held job waits, its reason naming the group and the job that holds it, until the group has room', () => {
    const q = new GroupQueues();
    q.activate({ id: 'run', order: 0, group: ref() });
    queue(q, ['next'], ref());
    const [wait] = groupActions(q.entries());
    expect(wait).toMatchObject({ kind: 'wait', id: 'next', reason: 'concurrency group deploy (tenant t) is full: 1/1 running: job run' });
    q.remove('run'); // it ended: the group has room, and the waiting job is told so
    expect(q.release(ref().key).map((j) => j.id)).toEqual(['next']);
    expect(groupActions(q.entries())).toEqual([{ kind: 'room', id: 'next', group: ref() }]);
  });

  it('skip and cancel-newest end the arriving job; the one running is left alone', () => {
    const q = new GroupQueues();
    q.activate({ id: 'run', order: 0, group: ref() });
    queue(q, ['s', 'n'], (id) => ref(1, id === 's' ? C.CONCURRENCY_CONFLICT_SKIP : C.CONCURRENCY_CONFLICT_CANCEL_NEWEST));
    const actions = groupActions(q.entries());
    expect(ids(actions, 'skip')).toEqual(['s']);
    expect(ids(actions, 'cancel')).toEqual(['n']);
    expect(actions.map((a) => a.id)).not.toContain('run');
  });

  it('cancel-in-progress supersedes the older jobs, running and queued, keeping the newest `concurrency`', () => {
    const q = new GroupQueues();
    q.activate({ id: 'old1', order: 0, group: ref(2) });
    q.activate({ id: 'old2', order: 1, group: ref(2) });
    queue(q, ['queued', 'new'], (id) => ref(2, id === 'new' ? C.CONCURRENCY_CONFLICT_CANCEL_IN_PROGRESS : C.CONCURRENCY_CONFLICT_QUEUE), 2);
    const actions = groupActions(q.entries());
    expect(ids(actions, 'supersede').sort()).toEqual(['old1', 'old2']);
    expect(actions.find((a) => a.kind === 'supersede')).toMatchObject({ by: 'new' });
    // The newest older job stays (limit 2 = it and the new one) and waits.
    expect(ids(actions, 'wait')).toEqual(['queued', 'new']);
  });
});
