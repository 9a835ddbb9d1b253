/**
 * A peer that joins and campaigns, for the cross-process pause test
 * (election-pause.test.ts). It prints its view as JSON lines on stdout whenever
 * the view changes, and marks every line after a pause (a gap in its own
 * 5 ms sampling timer) as `resumed`. On the first sample after a pause it tries
 * a write fenced with the term it held, and prints whether it succeeded.
 *
 * Env: RUNMESH_ETCD (endpoint), RUNMESH_PREFIX, RUNMESH_PEER_ID, RUNMESH_TTL (seconds).
 */
import { performance } from 'node:perf_hooks';
import { openEtcdStore } from '../../store/etcd.js';
import { LeaderElection, leaderFence } from '../election.js';
import { PeerMembership } from '../membership.js';

const SAMPLE_MS = 5;
const PAUSE_GAP_MS = 300;

const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

const store = await openEtcdStore({ endpoints: [env('RUNMESH_ETCD')], prefix: env('RUNMESH_PREFIX') });
const peerId = env('RUNMESH_PEER_ID');
const ttlSeconds = Number(env('RUNMESH_TTL'));
const membership = await PeerMembership.join(store, { peerId, grpcAddress: `${peerId}:1`, httpAddress: `${peerId}:2`, ttlSeconds });
const election = await LeaderElection.start(store, { peerId, grpcAddress: `${peerId}:1`, lease: membership.lease, ttlSeconds });

let noticed = false;
let resumed = false;
let heldTerm: number | undefined;
let last = '';
let lastSample = performance.now();

const print = (extra: Record<string, unknown> = {}): void => {
  const view = { isLeader: election.isLeader(), term: election.term, leader: election.leader()?.peerId ?? null, noticed, resumed };
  const key = JSON.stringify(view);
  if (key === last && Object.keys(extra).length === 0) return;
  last = key;
  process.stdout.write(`${JSON.stringify({ ...view, ...extra })}\n`);
};

void membership.lost.then(() => {
  noticed = true;
  print({ event: 'lease lost' });
});
election.onChange(() => print({ event: 'change' }));

setInterval(() => {
  const now = performance.now();
  const gap = now - lastSample;
  lastSample = now;
  if (election.isLeader()) heldTerm = election.term;
  if (gap > PAUSE_GAP_MS && !resumed) {
    resumed = true;
    print({ event: 'resumed', pausedMs: Math.round(gap) });
    void fencedWrite();
    return;
  }
  print();
}, SAMPLE_MS);

async function fencedWrite(): Promise<void> {
  if (heldTerm === undefined) return print({ event: 'fenced write', succeeded: null });
  try {
    const res = await store.txn({ compare: [leaderFence(heldTerm)], success: [{ type: 'put', key: '/runmesh/fenced', value: peerId }] });
    print({ event: 'fenced write', fencedTerm: heldTerm, succeeded: res.succeeded });
  } catch (err) {
    print({ event: 'fenced write', fencedTerm: heldTerm, succeeded: false, error: (err as Error).name });
  }
}

process.on('SIGTERM', () => {
  void election
    .close()
    .then(() => membership.close())
    .finally(() => store.close())
    .finally(() => process.exit(0));
});
