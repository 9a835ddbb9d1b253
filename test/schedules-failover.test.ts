/**
 * Schedules across a leader failover, with three real peers on a real etcd:
 * the leader is killed (SIGKILL) right at a tick of every-second schedules.
 * Each tick of the schedule whose ticks stay within missed_after (60 s) gets
 * exactly one job, none missing, none twice, fired late by the new leader;
 * the schedules with missed_after 1 s follow their policy for the ticks the
 * outage missed: one run for them all (run-once), or none (skip). No agent is
 * needed: the jobs are counted, not run.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MissedPolicy, OverlapPolicy, type ScheduleSpec } from '../proto/gen/runmesh/v1/schedule.js';
import { adminToken } from './support/client.js';
import { startEtcd, type TestEtcd } from './support/etcd.js';
import { startPeers, waitLeader, type MeshPeer } from './support/mesh.js';
import { stopAll } from './support/processes.js';
import { ScheduleClient, tickGaps } from './support/schedules.js';
import { sleep, waitUntil } from './support/wait.js';

let etcd: TestEtcd;
let peers: MeshPeer[];
const clients: ScheduleClient[] = [];

beforeAll(async () => {
  etcd = await startEtcd();
  peers = await startPeers(etcd, 'sch', 3);
}, 120_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await stopAll();
  await etcd?.stop();
});

const everySecond = (name: string, extra: Partial<ScheduleSpec> = {}): Partial<ScheduleSpec> => ({
  name,
  cron: '* * * * * *',
  overlap: OverlapPolicy.OVERLAP_POLICY_QUEUE,
  job: { argv: ['true'] } as never,
  ...extra,
});

it('starts each tick once across a leader killed at a tick, and follows the missed-tick policy', async () => {
  const token = adminToken(...peers.map((p) => p.dataDir));
  const leader = await waitLeader(peers[0]!.client);
  const survivors = peers.filter((p) => p.id !== leader);
  const [first, second] = survivors.map((p) => new ScheduleClient(p.address, token));
  clients.push(first!, second!);
  await first!.create(everySecond('tick'));
  await first!.create(everySecond('once', { missed: MissedPolicy.MISSED_POLICY_RUN_ONCE, missedAfterSeconds: 1 }));
  await first!.create(everySecond('skip', { missed: MissedPolicy.MISSED_POLICY_SKIP, missedAfterSeconds: 1 }));
  // Stored once, read on every peer.
  expect((await second!.get('tick')).spec?.cron).toBe('* * * * * *');
  await waitUntil(async () => (await second!.jobsOf('tick')).length >= 2, { what: 'two ticks before the kill', timeoutMs: 15_000 });
  // Right at a tick: the leader is about to fire it (or firing it) when it dies.
  await sleep(1000 - (Date.now() % 1000));
  const killedAt = Date.now();
  await peers.find((p) => p.id === leader)!.kill9();
  const next = await waitLeader(
    survivors[0]!.client,
    leader,
    30_000,
    survivors.map((p) => p.id),
  );
  const recovered = Date.now();
  // Fired again, and past the outage by a tick.
  await waitUntil(async () => (await second!.jobsOf('tick')).some((j) => Date.parse(j.scheduledAt ?? '') >= recovered + 1000), {
    what: 'ticks after the failover',
    timeoutMs: 20_000,
  });
  for (const name of ['tick', 'once', 'skip']) await second!.pause(name);
  const ticks = await second!.jobsOf('tick');
  const last = Date.parse(ticks.at(-1)!.scheduledAt ?? '');
  expect({ next, gaps: tickGaps(ticks) }).toEqual({ next, gaps: { missing: [], twice: [] } });
  expect(Date.parse(ticks[0]!.scheduledAt ?? '')).toBeLessThan(killedAt);
  expect(last).toBeGreaterThan(recovered);
  // The outage (the lease's 3 s at least) missed ticks past 1 s: one run for them (run-once), none (skip).
  const once = await second!.get('once');
  const catchUp = once.runs.find((r) => /^one run for \d+ missed ticks?$/.test(r.note));
  expect(catchUp?.jobIds, JSON.stringify(once.runs)).toHaveLength(1);
  expect(tickGaps(await second!.jobsOf('once')).twice).toEqual([]);
  const skip = await second!.get('skip');
  const skipped = skip.runs.find((r) => /^skipped \d+ missed ticks?$/.test(r.note));
  expect(skipped?.jobIds, JSON.stringify(skip.runs)).toEqual([]);
  const skipJobs = await second!.jobsOf('skip');
  expect(tickGaps(skipJobs).twice).toEqual([]);
  expect(skipJobs.some((j) => j.scheduledAt === skipped?.scheduledAt)).toBe(false);
}, 120_000);
