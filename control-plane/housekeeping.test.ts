/** Housekeeping on both real stores: retention of ended jobs and their logs, fencing, and history compaction. */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobSpec, JobState } from '../proto/gen/runmesh/v1/job.js';
import { startEtcd, type TestEtcd } from '../test/support/etcd.js';
import { Housekeeper } from './housekeeping.js';
import { newJobId } from './jobs/ids.js';
import { queuedRecord, type JobRecord, type ResolvedSpec } from './jobs/record.js';
import { validateSpec } from './jobs/validate.js';
import { JobRepo } from './jobs/repo.js';
import { LogStore } from './logs/log-store.js';
import { DirArtifactStorage } from './artifacts/dir-storage.js';
import { createHash } from 'node:crypto';
import { isCompacted } from './store/errors.js';
import { openEmbeddedStore } from './store/embedded.js';
import { openEtcdStore } from './store/etcd.js';
import type { Compare, Store } from './store/store.js';
import { waitUntil } from '../test/support/wait.js';

const HOUR = 3600_000;
const silent = pino({ level: 'silent' });
let etcd: TestEtcd;
const dirs: string[] = [];
beforeAll(async () => {
  etcd = await startEtcd();
});
afterAll(async () => {
  await etcd?.stop();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const stores: Array<[string, () => Promise<Store>]> = [
  ['embedded', async () => openEmbeddedStore({ dir: await temp() })],
  ['etcd', () => openEtcdStore({ endpoints: [etcd.endpoint], prefix: `/hk-${randomUUID()}/` })],
];

async function temp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'runmesh-hk-'));
  dirs.push(d);
  return d;
}

const spec = (idempotencyKey = ''): ResolvedSpec => validateSpec(JobSpec.fromPartial({ argv: ['true'], idempotencyKey }));

/** A job submitted at `submitted`; with `endedAt`, one that succeeded then. */
function job(submitted: number, endedAt?: number, idempotencyKey = ''): JobRecord {
  const r = queuedRecord(newJobId(submitted), spec(idempotencyKey), new Date(submitted), submitted * 1000);
  if (endedAt !== undefined) {
    r.job.state = JobState.JOB_STATE_SUCCEEDED;
    r.job.updatedAt = new Date(endedAt).toISOString();
  } else {
    r.job.state = JobState.JOB_STATE_RUNNING;
  }
  return r;
}

async function setup(
  open: () => Promise<Store>,
  o: { leader?: boolean; fence?: Compare[]; compactionIntervalMs?: number; retentionMs?: number; maxEndedJobs?: number } = {},
) {
  const store = await open();
  const repo = new JobRepo(store);
  const logs = new LogStore(join(await temp(), 'logs'));
  const artifacts = new DirArtifactStorage(join(await temp(), 'artifacts'));
  // Live jobs as the tracker would count them: what is stored and not ended.
  const liveJobs = { n: 0 };
  const keeper = new Housekeeper({
    repo,
    store,
    logs,
    artifacts,
    logger: silent,
    jobRetentionMs: o.retentionMs ?? 24 * HOUR,
    compactionIntervalMs: o.compactionIntervalMs ?? 0,
    maxEndedJobs: o.maxEndedJobs ?? 0,
    liveJobs: () => liveJobs.n,
    isLeader: () => o.leader ?? true,
    fence: () => o.fence ?? [],
  });
  const withLog = async (r: JobRecord): Promise<void> => {
    const f = await logs.file(r.job.id, 1);
    f.append(0, 1, Buffer.from(`log of ${r.job.id}`));
    await logs.seal(r.job.id, 1);
  };
  /** Begins an upload of `r`'s attempt 1; with `commit`, stores it. */
  const withArtifact = async (r: JobRecord, commit: boolean): Promise<void> => {
    const body = Buffer.from(`artifact of ${r.job.id}`);
    const file = { path: 'out.txt', size: BigInt(body.length), sha256: createHash('sha256').update(body).digest('hex') };
    const key = { jobId: r.job.id, attempt: 1 };
    await artifacts.begin(key, [file], { fileBytes: 1000, jobBytes: 1000, files: 1 });
    await artifacts.append(key, 'out.txt', 0, [body]);
    if (commit) await artifacts.commit(key);
  };
  return { store, repo, logs, artifacts, keeper, withLog, withArtifact, liveJobs };
}

describe.each(stores)('housekeeping on the %s store', (_name, open) => {
  it('deletes jobs that ended before the retention with their idempotency keys and logs, and keeps the rest', async () => {
    const now = Date.now();
    const { store, repo, logs, keeper, withLog } = await setup(open);
    const expired = job(now - 30 * HOUR, now - 29 * HOUR);
    const expiredIdem = job(now - 28 * HOUR, now - 27 * HOUR, 'build-41');
    const recent = job(now - 30 * HOUR, now - 2 * HOUR); // submitted long ago, ended inside the retention
    const running = job(now - 40 * HOUR); // still running after 40 h: never deleted
    const fresh = job(now - HOUR, now - HOUR + 1000);
    await repo.storeNew([running, expired, recent, expiredIdem, fresh]);
    await store.put('/runmesh/idem/default/build-41', expiredIdem.job.id);
    for (const r of [expired, expiredIdem, recent, running]) await withLog(r);

    expect(await keeper.sweep(now)).toEqual({ jobs: 2, overCap: 0, logs: 2 });
    for (const r of [expired, expiredIdem]) expect(await repo.get(r.job.id)).toBeUndefined();
    for (const r of [recent, running, fresh]) expect((await repo.get(r.job.id))?.record.job.state).toBe(r.job.state);
    expect(await store.get('/runmesh/idem/default/build-41')).toBeUndefined();
    expect(await logs.jobs()).toEqual([running.job.id, recent.job.id].sort());
    // A day later the recent one is due too; the running one stays.
    expect(await keeper.sweep(now + 24 * HOUR)).toEqual({ jobs: 2, overCap: 0, logs: 1 });
    expect(await logs.jobs()).toEqual([running.job.id]);
    expect((await repo.get(running.job.id))?.record.job.state).toBe(JobState.JOB_STATE_RUNNING);
    await logs.close();
    await store.close();
  });

  it('keeps at most the cap of ended jobs: the oldest submitted go, with their keys and logs; live ones never count', async () => {
    const now = Date.now();
    const { store, repo, logs, keeper, withLog, liveJobs } = await setup(open, { retentionMs: 0, maxEndedJobs: 3 });
    const ended = Array.from({ length: 6 }, (_, i) => job(now - (10 - i) * HOUR, now - (10 - i) * HOUR + 1000, i === 0 ? 'build-7' : ''));
    const running = job(now - 8.5 * HOUR); // among the oldest, and live: neither counted nor deleted
    await repo.storeNew([running, ...ended]);
    await store.put('/runmesh/idem/default/build-7', ended[0]!.job.id);
    liveJobs.n = 1;
    for (const r of ended) await withLog(r);

    // Logs of the deleted jobs submitted before the oldest record left (the running one) go in the
    // sweep; a peer's watch removes the others as the deletes arrive (see test/retention.test.ts).
    expect(await keeper.sweep(now)).toEqual({ jobs: 0, overCap: 3, logs: 2 });
    for (const r of ended.slice(0, 3)) expect(await repo.get(r.job.id)).toBeUndefined();
    for (const r of [running, ...ended.slice(3)]) expect(await repo.get(r.job.id)).toBeDefined();
    expect(await store.get('/runmesh/idem/default/build-7')).toBeUndefined();
    expect(await logs.jobs()).toEqual(ended.slice(2).map((r) => r.job.id));
    expect(await repo.count()).toBe(4);
    // At the cap: nothing more goes.
    expect(await keeper.sweep(now)).toEqual({ jobs: 0, overCap: 0, logs: 0 });
    await logs.close();
    await store.close();
  });

  it('removes logs of jobs older than every record without asking for each one, but not recent ones', async () => {
    const now = Date.now();
    const follower = await setup(open, { leader: false, retentionMs: 0, maxEndedJobs: 10 });
    const oldest = job(now - 5 * HOUR, now - 5 * HOUR + 1000);
    const goneLongAgo = job(now - 6 * HOUR, now - 6 * HOUR + 1000); // deleted over the cap by the leader
    const goneJustNow = job(now - 60_000, now - 30_000); // too recent to be sure no peer is still creating it
    await follower.repo.storeNew([oldest]);
    for (const r of [oldest, goneLongAgo]) await follower.withLog(r);
    expect(await follower.keeper.sweep(now)).toEqual({ jobs: 0, overCap: 0, logs: 1 });
    expect(await follower.logs.jobs()).toEqual([oldest.job.id]);
    await follower.repo.remove((await follower.repo.get(oldest.job.id))!, []);
    await follower.withLog(goneJustNow);
    // No record left at all: only logs older than a few minutes go.
    expect(await follower.keeper.sweep(now)).toEqual({ jobs: 0, overCap: 0, logs: 1 });
    expect(await follower.logs.jobs()).toEqual([goneJustNow.job.id]);
    await follower.logs.close();
    await follower.store.close();
  });

  it('deletes nothing a leader fence refuses, nor a record that changed since it was read', async () => {
    const now = Date.now();
    const stale = await setup(open, { fence: [{ key: '/runmesh/leader', target: 'createRevision', op: '==', value: 987_654 }] });
    const old = job(now - 48 * HOUR, now - 47 * HOUR);
    await stale.repo.storeNew([old]);
    expect(await stale.keeper.sweep(now)).toEqual({ jobs: 0, overCap: 0, logs: 0 });
    expect(await stale.repo.get(old.job.id)).toBeDefined();

    const [due] = await stale.repo.endedBefore(now - 24 * HOUR, 10);
    await stale.repo.update(old.job.id, (r) => void (r.job.waitingReason = 'touched'));
    expect(await stale.repo.remove(due!, [])).toBe(false);
    expect((await stale.repo.get(old.job.id))?.record.job.waitingReason).toBe('touched');
    await stale.store.close();
  });

  it('leaves job deletion to the leader but still removes its own logs of jobs that are gone', async () => {
    const now = Date.now();
    const follower = await setup(open, { leader: false });
    const old = job(now - 48 * HOUR, now - 47 * HOUR);
    const gone = job(now - 50 * HOUR, now - 49 * HOUR); // deleted by the leader: only its log is left here
    await follower.repo.storeNew([old]);
    await follower.withLog(old);
    await follower.withLog(gone);
    expect(await follower.keeper.sweep(now)).toEqual({ jobs: 0, overCap: 0, logs: 1 });
    expect(await follower.logs.jobs()).toEqual([old.job.id]);
    await follower.logs.close();
    await follower.store.close();
  });

  it("deletes the artifacts of jobs that are gone, and uploads left unfinished by attempts no longer running, not a running one's", async () => {
    const now = Date.now();
    const { store, repo, artifacts, keeper, withArtifact } = await setup(open);
    const kept = job(now - HOUR, now - HOUR + 1000);
    const gone = job(now - 50 * HOUR, now - 49 * HOUR); // its record was deleted: only its artifacts are left here
    const running = job(now - 2 * HOUR);
    running.job.attempt = 1;
    const ended = job(now - 3 * HOUR, now - 2 * HOUR); // ended without committing its upload
    ended.job.attempt = 1;
    await repo.storeNew([kept, running, ended]);
    await withArtifact(kept, true);
    await withArtifact(gone, true);
    await withArtifact(running, false);
    await withArtifact(ended, false);
    // Within ten minutes an unfinished upload is left alone, whatever its attempt.
    await keeper.sweep(now);
    expect((await artifacts.uploads()).map((u) => u.jobId).sort()).toEqual([running.job.id, ended.job.id].sort());
    expect(await artifacts.jobs()).toEqual([kept.job.id, running.job.id, ended.job.id].sort());
    await keeper.sweep(now + 11 * 60_000);
    expect((await artifacts.uploads()).map((u) => u.jobId)).toEqual([running.job.id]);
    expect(await artifacts.list({ jobId: kept.job.id, attempt: 1 })).toHaveLength(1);
    await keeper.forget(kept.job.id); // its record's delete, seen on the watch
    expect(await artifacts.list({ jobId: kept.job.id, attempt: 1 })).toBeUndefined();
    await store.close();
  });

  it('compacts history to the revision of the previous tick, so only older watches fail', async () => {
    const { store, keeper } = await setup(open, { compactionIntervalMs: 60_000 });
    await store.put('/a', '1');
    expect(await keeper.compact()).toBeUndefined(); // the first tick only notes where history stands
    const kept = await store.revision();
    await store.put('/a', '2');
    expect(await keeper.compact()).toBe(kept);
    const errors: Error[] = [];
    const events: string[] = [];
    const old = await store.watch('/a', { onEvents: () => undefined, onError: (e) => errors.push(e) }, kept - 2);
    const ok = await store.watch('/a', { onEvents: (ev) => events.push(...ev.map((e) => e.type)), onError: (e) => errors.push(e) }, kept);
    await waitUntil(() => errors.length > 0 && events.length > 0, { what: 'the compacted and the kept watch', timeoutMs: 5_000 });
    expect(errors.map(isCompacted)).toEqual([true]);
    expect(events).toEqual(['put']);
    await old.close();
    await ok.close();
    await store.close();
  });
});
