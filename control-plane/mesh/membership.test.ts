import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type TestEtcd } from '../../test/support/etcd.js';
import { openEtcdStore, type EtcdStore } from '../store/etcd.js';
import { PeerMembership } from './membership.js';
import { waitUntil } from '../../test/support/wait.js';

let etcd: TestEtcd;
beforeAll(async () => {
  etcd = await startEtcd();
});
afterAll(async () => {
  await etcd?.stop();
});

const stores: EtcdStore[] = [];
const members: PeerMembership[] = [];
afterEach(async () => {
  for (const m of members.splice(0)) await m.close();
  for (const s of stores.splice(0)) await s.close();
});

async function open(prefix: string): Promise<EtcdStore> {
  const store = await openEtcdStore({ endpoints: [etcd.endpoint], prefix });
  stores.push(store);
  return store;
}

async function join(
  prefix: string,
  peerId: string,
  ttlSeconds = 1,
  logger?: pino.Logger,
): Promise<{ m: PeerMembership; store: EtcdStore }> {
  const store = await open(prefix);
  const m = await PeerMembership.join(store, {
    peerId,
    grpcAddress: `127.0.0.1:${peerId.length}`,
    httpAddress: '127.0.0.1:1',
    ttlSeconds,
    logger,
  });
  members.push(m);
  return { m, store };
}

const ids = (m: PeerMembership): string[] => m.peers().map((p) => p.id);

describe('PeerMembership', () => {
  it('lets three members see each other, and a dead one vanish after its TTL', async () => {
    const prefix = `/t-${randomUUID()}/`;
    const [a, b, c] = [await join(prefix, 'a'), await join(prefix, 'b'), await join(prefix, 'c')];
    for (const x of [a, b, c]) await waitUntil(() => ids(x.m).join() === 'a,b,c', { what: 'all three peers', timeoutMs: 10_000 });
    expect(a.m.peer('b')).toMatchObject({ id: 'b', grpcAddress: '127.0.0.1:1', httpAddress: '127.0.0.1:1' });
    expect(a.m.self.version).not.toBe('');

    const seen: string[][] = [];
    a.m.onChange((peers) => seen.push(peers.map((p) => p.id)));
    // Close c's store without revoking: its keepalives stop and etcd expires the lease.
    const died = Date.now();
    await c.store.close();
    await expect(c.m.lost).resolves.toBeInstanceOf(Error);
    await waitUntil(() => ids(a.m).join() === 'a,b' && ids(b.m).join() === 'a,b', { what: 'c to vanish', timeoutMs: 10_000 });
    const gone = Date.now() - died;
    console.log(`dead peer vanished after ${gone} ms (ttl 1 s)`);
    expect(gone).toBeGreaterThanOrEqual(500);
    expect(seen.at(-1)).toEqual(['a', 'b']);
  });

  it('removes its key at once on close, and close is idempotent', async () => {
    const prefix = `/t-${randomUUID()}/`;
    const a = await join(prefix, 'a', 30);
    const b = await join(prefix, 'b', 30);
    await waitUntil(() => ids(a.m).length === 2, { what: 'both peers seen' });
    await Promise.all([b.m.close(), b.m.close()]);
    await waitUntil(() => ids(a.m).join() === 'a', { what: 'b to leave well before its 30 s TTL', timeoutMs: 3_000 });
    expect(await a.store.get('/runmesh/peers/b')).toBeUndefined();
  });

  it('follows the peers again after its watch revision is compacted', async () => {
    const prefix = `/t-${randomUUID()}/`;
    const messages: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void messages.push((JSON.parse(line) as { msg: string }).msg) });
    const a = await join(prefix, 'a', 30, logger);
    // Writes outside the watched prefix move the store past the watch's resume point.
    await a.store.put('/runmesh/other', 'x');
    await a.store.put('/runmesh/other', 'y');
    // Compact past everything, then make the watch reconnect from its (now compacted) revision.
    await a.store.compact(await a.store.revision());
    await etcd.restart();
    await join(prefix, 'b', 30);
    await waitUntil(() => ids(a.m).join() === 'a,b', { what: 'b seen after compaction', timeoutMs: 20_000 });
    expect(messages).toContain('watch compacted; re-reading');
  });
});
