import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type TestEtcd } from '../../test/support/etcd.js';
import { openEmbeddedStore } from '../store/embedded.js';
import { openEtcdStore } from '../store/etcd.js';
import type { Store } from '../store/store.js';
import { LeaderElection, leaderFence } from './election.js';
import { PeerMembership } from './membership.js';
import { sleep, waitUntil } from '../../test/support/wait.js';

let etcd: TestEtcd;
beforeAll(async () => {
  etcd = await startEtcd();
});
afterAll(async () => {
  await etcd?.stop();
});

interface Peer {
  id: string;
  store: Store;
  membership: PeerMembership;
  election: LeaderElection;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function peer(prefix: string, id: string, ttlSeconds: number): Promise<Peer> {
  const store = await openEtcdStore({ endpoints: [etcd.endpoint], prefix });
  cleanups.push(() => store.close());
  return start(store, id, ttlSeconds);
}

async function start(store: Store, id: string, ttlSeconds: number): Promise<Peer> {
  const membership = await PeerMembership.join(store, { peerId: id, grpcAddress: `${id}:1`, httpAddress: `${id}:2`, ttlSeconds });
  const election = await LeaderElection.start(store, { peerId: id, grpcAddress: `${id}:1`, lease: membership.lease, ttlSeconds });
  cleanups.push(async () => {
    await election.close();
    await membership.close();
  });
  return { id, store, membership, election };
}

const leaders = (peers: Peer[]): Peer[] => peers.filter((p) => p.election.isLeader());

/** Samples every 20 ms for `ms`: never two leaders at once. Returns how many samples had exactly one. */
async function neverTwo(peers: Peer[], ms: number): Promise<number> {
  let withOne = 0;
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const now = leaders(peers);
    expect(now.length, `leaders at one instant: ${now.map((p) => p.id).join()}`).toBeLessThanOrEqual(1);
    if (now.length === 1) withOne++;
    await sleep(20);
  }
  return withOne;
}

describe('LeaderElection', () => {
  it('keeps exactly one leader among three campaigners, and fails over when it dies', async () => {
    const prefix = `/t-${randomUUID()}/`;
    const peers = [await peer(prefix, 'a', 2), await peer(prefix, 'b', 2), await peer(prefix, 'c', 2)];
    await waitUntil(() => leaders(peers).length === 1, { what: 'a leader', timeoutMs: 10_000 });
    const samples = await neverTwo(peers, 3_000);
    expect(samples).toBeGreaterThan(50);
    const first = leaders(peers)[0]!;
    for (const p of peers) expect(p.election.leader()).toEqual({ peerId: first.id, grpcAddress: `${first.id}:1` });
    expect(first.election.term).toBeGreaterThan(0);

    // The leader's process "dies": its keepalives stop, its lease runs out.
    const died = Date.now();
    await first.store.close();
    expect(first.election.isLeader()).toBe(false);
    const rest = peers.filter((p) => p !== first);
    const deadline = Date.now() + 10_000;
    while (leaders(rest).length === 0 && Date.now() < deadline) {
      expect(leaders(peers).length).toBeLessThanOrEqual(1);
      await sleep(20);
    }
    const failover = Date.now() - died;
    console.log(`leader failover took ${failover} ms (ttl 2 s)`);
    expect(failover).toBeLessThanOrEqual(5_000);
    const second = leaders(rest)[0]!;
    expect(second.election.term).toBeGreaterThan(first.election.term ?? 0);
    await neverTwo(peers, 500);
    await waitUntil(() => rest.every((p) => p.election.leader()?.peerId === second.id), {
      what: 'agreement on the new leader',
      timeoutMs: 5_000,
    });
  });

  it('fences the writes of a deposed leader', async () => {
    const prefix = `/t-${randomUUID()}/`;
    const a = await peer(prefix, 'a', 2);
    await waitUntil(() => a.election.isLeader(), { what: 'a leads', timeoutMs: 10_000 });
    const b = await peer(prefix, 'b', 2);
    const oldTerm = a.election.term!;
    const write = (term: number, value: string) =>
      a.store.txn({ compare: [leaderFence(term)], success: [{ type: 'put', key: '/runmesh/jobs/x', value }] });
    expect((await write(oldTerm, 'from a')).succeeded).toBe(true);

    await a.election.resign();
    await waitUntil(() => b.election.isLeader(), { what: 'b leads', timeoutMs: 10_000 });
    const newTerm = b.election.term!;
    expect(newTerm).toBeGreaterThan(oldTerm);
    expect((await write(oldTerm, 'stale a')).succeeded).toBe(false);
    expect((await write(newTerm, 'from b')).succeeded).toBe(true);
    expect((await a.store.get('/runmesh/jobs/x'))?.value).toBe('from b');
    // A resigned peer does not campaign again until asked to.
    await sleep(300); // deliberate: time to campaign, which it must not
    expect(a.election.isLeader()).toBe(false);
  });

  it('hands over at once on resign and close, and tells listeners', async () => {
    const prefix = `/t-${randomUUID()}/`;
    const a = await peer(prefix, 'a', 30);
    await waitUntil(() => a.election.isLeader(), { what: 'a leads', timeoutMs: 10_000 });
    const b = await peer(prefix, 'b', 30);
    const states: boolean[] = [];
    b.election.onChange((s) => states.push(s.isLeader));
    await a.election.close();
    await waitUntil(() => b.election.isLeader(), { what: 'b leads well before the 30 s TTL', timeoutMs: 3_000 });
    expect(states.at(-1)).toBe(true);

    await b.election.resign();
    await waitUntil(() => b.election.leader() === undefined, { what: 'no leader after resign', timeoutMs: 3_000 });
    expect(states.at(-1)).toBe(false);
    b.election.campaign();
    await waitUntil(() => b.election.isLeader(), { what: 'b leads again', timeoutMs: 3_000 });
  });

  it('takes over at once from an earlier run of the same peer id', async () => {
    const prefix = `/t-${randomUUID()}/`;
    const old = await peer(prefix, 'a', 30);
    await waitUntil(() => old.election.isLeader(), { what: 'old run leads', timeoutMs: 10_000 });
    const oldTerm = old.election.term!;
    await old.store.close(); // crash: the key stays for 30 s
    const again = await peer(prefix, 'a', 30);
    await waitUntil(() => again.election.isLeader(), { what: 'new run leads before the old lease expires', timeoutMs: 5_000 });
    expect(again.election.term).toBeGreaterThan(oldTerm);
  });

  it('works on the embedded store, where the lease lives as long as the process', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'runmesh-election-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const store = await openEmbeddedStore({ dir });
    cleanups.push(() => store.close());
    const a = await start(store, 'a', 5);
    await waitUntil(() => a.election.isLeader(), { what: 'a leads', timeoutMs: 5_000 });
    expect(a.membership.lease.renewedAt).toBeUndefined();
    const b = await start(store, 'b', 5);
    await sleep(100); // deliberate: b's first campaign runs, and must not win
    expect(b.election.isLeader()).toBe(false);
    expect(b.election.leader()?.peerId).toBe('a');
  });
});
