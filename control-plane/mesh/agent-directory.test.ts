import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type TestEtcd } from '../../test/support/etcd.js';
import { openEtcdStore } from '../store/etcd.js';
import type { Lease, Store } from '../store/store.js';
import { AgentDirectory, type AgentRecord } from './agent-directory.js';
import { sleep, waitUntil } from '../../test/support/wait.js';

let etcd: TestEtcd;
beforeAll(async () => {
  etcd = await startEtcd();
});
afterAll(async () => {
  await etcd?.stop();
});

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

/** One peer's view: its own store client, lease and directory. */
async function peerSide(prefix: string): Promise<{ store: Store; lease: Lease; dir: AgentDirectory }> {
  const store = await openEtcdStore({ endpoints: [etcd.endpoint], prefix });
  cleanups.push(() => store.close());
  const lease = await store.grantLease(30);
  cleanups.push(() => lease.revoke());
  const dir = await AgentDirectory.open(store);
  cleanups.push(() => dir.close());
  return { store, lease, dir };
}

const record = (name: string, peerId: string, extra: Partial<AgentRecord> = {}): AgentRecord => ({
  name,
  peerId,
  labels: { os: 'linux' },
  capacity: { slots: 2, cpuMillis: 2000, memoryMb: 4096 },
  version: '0.1.0',
  hostname: `${name}.local`,
  containment: 'process group (test)',
  connectedAt: new Date().toISOString(),
  cordoned: false,
  draining: false,
  unhealthy: '',
  load: 0,
  ...extra,
});

describe('AgentDirectory', () => {
  it('shows an agent published on one peer to another, and drops it with the publishing peer', async () => {
    const prefix = `/t-${randomUUID()}/`;
    const p1 = await peerSide(prefix);
    const p2 = await peerSide(prefix);
    let changes = 0;
    p2.dir.onChange(() => changes++);
    await p1.dir.publish(record('runner-1', 'p1'), p1.lease);
    await p1.dir.publish(record('runner-2', 'p1', { draining: true, load: 0.7 }), p1.lease);
    await waitUntil(() => p2.dir.all().length === 2, { what: 'both agents on p2', timeoutMs: 5_000 });
    expect(p2.dir.get('runner-1')).toEqual(record('runner-1', 'p1', { connectedAt: p2.dir.get('runner-1')!.connectedAt }));
    expect(p2.dir.get('runner-2')?.draining).toBe(true);
    expect(p2.dir.get('runner-2')?.load).toBe(0.7);
    expect(p2.dir.all().map((a) => a.name)).toEqual(['runner-1', 'runner-2']);
    expect(changes).toBeGreaterThan(0);

    await p1.lease.revoke();
    await waitUntil(() => p2.dir.all().length === 0, { what: 'agents gone with p1', timeoutMs: 5_000 });
  });

  it('unpublishes only what the caller still holds', async () => {
    const prefix = `/t-${randomUUID()}/`;
    const p1 = await peerSide(prefix);
    const p2 = await peerSide(prefix);
    await p1.dir.publish(record('runner-1', 'p1'), p1.lease);
    expect(await p2.dir.unpublish('runner-1', 'p2')).toBe(false);
    await sleep(100); // deliberate: time for a delete, which must not come
    expect((await p2.store.get('/runmesh/agents/runner-1'))?.value).toContain('"peerId":"p1"');

    // The agent reconnects to p2; p1's late cleanup must not remove the new session.
    await p2.dir.publish(record('runner-1', 'p2'), p2.lease);
    expect(await p1.dir.unpublish('runner-1', 'p1')).toBe(false);
    await waitUntil(() => p1.dir.get('runner-1')?.peerId === 'p2', { what: 'p2 holds runner-1', timeoutMs: 5_000 });
    expect(await p2.dir.unpublish('runner-1', 'p2')).toBe(true);
    await waitUntil(() => p1.dir.get('runner-1') === undefined, { what: 'runner-1 gone', timeoutMs: 5_000 });
    expect(await p2.dir.unpublish('runner-1', 'p2')).toBe(false);
  });

  it('keeps the cordon across sessions and peers', async () => {
    const prefix = `/t-${randomUUID()}/`;
    const p1 = await peerSide(prefix);
    const p2 = await peerSide(prefix);
    await p1.dir.publish(record('runner-1', 'p1'), p1.lease);
    await p2.dir.setCordoned('runner-1', true);
    await waitUntil(() => p1.dir.get('runner-1')?.cordoned === true, { what: 'cordon seen on p1', timeoutMs: 5_000 });
    expect(p1.dir.config('runner-1')).toEqual({ cordoned: true });

    // p1 dies; the agent reconnects to p2, whose session copy says not cordoned: the config wins.
    await p1.lease.revoke();
    await waitUntil(() => p2.dir.get('runner-1') === undefined, { what: 'session gone', timeoutMs: 5_000 });
    expect(p2.dir.config('runner-1')).toEqual({ cordoned: true });
    await p2.dir.publish(record('runner-1', 'p2'), p2.lease);
    await waitUntil(() => p2.dir.get('runner-1')?.peerId === 'p2', { what: 'new session', timeoutMs: 5_000 });
    expect(p2.dir.get('runner-1')?.cordoned).toBe(true);

    await p2.dir.setCordoned('runner-1', false);
    await waitUntil(() => p2.dir.get('runner-1')?.cordoned === false, { what: 'uncordoned', timeoutMs: 5_000 });
    expect(p2.dir.config('never-seen')).toEqual({ cordoned: false });
  });
});
