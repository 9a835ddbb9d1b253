/**
 * Concurrency groups end to end, with real processes: each on-conflict mode
 * on one control plane (embedded store) with a real agent, and the limit
 * across a leader failover on three peers sharing a real etcd, checked from
 * the store's own history of the job records.
 */
import { status } from '@grpc/grpc-js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConcurrencyConflict, FailureCategory, JobState, type Job } from '../proto/gen/runmesh/v1/job.js';
import { decodeRecord } from '../control-plane/jobs/record.js';
import { isActive } from '../control-plane/jobs/state.js';
import { openEtcdStore, type EtcdStore } from '../control-plane/store/etcd.js';
import type { Watch } from '../control-plane/store/store.js';
import { adminToken, TestClient } from './support/client.js';
import { startEtcd, type TestEtcd } from './support/etcd.js';
import { startMeshAgents, startPeers, waitAllDone, waitLeader, type MeshPeer } from './support/mesh.js';
import { run, startAgent, startServer, stopAll, tempDir } from './support/processes.js';
import { waitUntil } from './support/wait.js';

const C = ConcurrencyConflict;
const at = (job: Job, state: JobState): number => Date.parse(job.timeline.find((t) => t.state === state)?.at ?? '');
const ended = (job: Job): number => Date.parse(job.timeline.at(-1)?.at ?? '');
const running = (j: Job): boolean => j.state === JobState.JOB_STATE_RUNNING;

afterAll(async () => {
  await stopAll();
});

describe('concurrency groups on one control plane', () => {
  let client: TestClient;
  let address = '';
  let token = '';

  /** Runs the CLI against the server; its output once it exited 0. */
  async function cliOut(args: string[]): Promise<string> {
    const cli = run(args, { RUNMESH_TOKEN: token, RUNMESH_LOG_LEVEL: 'silent' });
    await waitUntil(() => cli.proc.exitCode !== null, { what: `runmesh ${args[0]} to exit`, timeoutMs: 20_000, show: cli.output });
    expect(cli.proc.exitCode, cli.output()).toBe(0);
    return cli.output();
  }

  beforeAll(async () => {
    const server = await startServer();
    address = server.address;
    token = adminToken(server.dataDir);
    client = new TestClient(address, token);
    await startAgent(address, { name: 'groups', slots: 4 });
    await client.waitAgents(1);
  });

  it('queue: the second job waits, named by jobs get, and runs once the first ended; another tenant is not held up', async () => {
    const first = await client.submit({ argv: ['sleep', '60'], concurrencyGroup: 'deploy/main', cancelGraceSeconds: 1 });
    await client.waitFor(first.id, running);
    const second = (await cliOut(['submit', '--server', address, '--concurrency-group', 'deploy/main', '--', 'true'])).trim();
    const other = await client.submit({ argv: ['true'], concurrencyGroup: 'deploy/main', tenant: 'other' });

    const waiting = await client.waitFor(second, (j) => j.waitingOnGroup === 'deploy/main');
    expect(waiting.state).toBe(JobState.JOB_STATE_QUEUED);
    expect(waiting.waitingReason).toBe(`concurrency group deploy/main (tenant default) is full: 1/1 running: job ${first.id}`);
    const page = await cliOut(['jobs', 'get', second, '--server', address]);
    expect(page).toMatch(/waiting:\s+concurrency group deploy\/main \(tenant default\) is full: 1\/1 running/);
    expect(page).toMatch(/concurrency:\s+group deploy\/main, 1 at a time, on conflict: queue/);
    // Tenant "other" has a group of the same name of its own: it is not held up by default's.
    expect((await client.waitDone(other.id)).state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect((await client.get(first.id)).state).toBe(JobState.JOB_STATE_RUNNING);
    await client.cancel(first.id);

    const [a, b, o] = [await client.waitDone(first.id), await client.waitDone(second), await client.waitDone(other.id)];
    expect([a.state, b.state, o.state]).toEqual([JobState.JOB_STATE_CANCELLED, JobState.JOB_STATE_SUCCEEDED, JobState.JOB_STATE_SUCCEEDED]);
    expect(at(b, JobState.JOB_STATE_ASSIGNED)).toBeGreaterThanOrEqual(ended(a));
    expect(b.waitingOnGroup).toBe('');
  });

  it('cancel-in-progress: the new job cancels the running one of its tenant, which names it, and runs once it ended', async () => {
    const old = await client.submit({ argv: ['sleep', '60'], concurrencyGroup: 'cip', cancelGraceSeconds: 1 });
    await client.waitFor(old.id, running);
    // Another tenant's job of a group with the same name cancels nothing of this tenant's.
    const foreign = { argv: ['true'], concurrencyGroup: 'cip', onConflict: C.CONCURRENCY_CONFLICT_CANCEL_IN_PROGRESS, tenant: 'other' };
    expect((await client.waitDone((await client.submit(foreign)).id)).state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect((await client.get(old.id)).state).toBe(JobState.JOB_STATE_RUNNING);
    const next = await client.submit({ argv: ['true'], concurrencyGroup: 'cip', onConflict: C.CONCURRENCY_CONFLICT_CANCEL_IN_PROGRESS });
    const [o, n] = [await client.waitDone(old.id), await client.waitDone(next.id)];
    expect(o.state).toBe(JobState.JOB_STATE_CANCELLED);
    expect(o.supersededBy).toBe(next.id);
    expect(n.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect(at(n, JobState.JOB_STATE_ASSIGNED)).toBeGreaterThanOrEqual(ended(o));
  });

  it('cancel-newest and skip: the arriving job ends unrun, each its own way; the running one runs on', async () => {
    const holder = await client.submit({ argv: ['sleep', '60'], concurrencyGroup: 'full', cancelGraceSeconds: 1 });
    await client.waitFor(holder.id, running);
    const newest = await client.submit({ argv: ['true'], concurrencyGroup: 'full', onConflict: C.CONCURRENCY_CONFLICT_CANCEL_NEWEST });
    const skipped = await client.submit({ argv: ['true'], concurrencyGroup: 'full', onConflict: C.CONCURRENCY_CONFLICT_SKIP });
    const [n, s] = [await client.waitDone(newest.id), await client.waitDone(skipped.id)];
    expect([n.state, n.failure, n.attempts.length]).toEqual([JobState.JOB_STATE_CANCELLED, FailureCategory.FAILURE_CATEGORY_CANCELLED, 0]);
    expect(n.timeline.at(-1)?.reason).toMatch(/^cancel-newest: concurrency group full \(tenant default\) is full: 1\/1 running/);
    expect([s.state, s.failure, s.attempts.length]).toEqual([
      JobState.JOB_STATE_CANCELLED,
      FailureCategory.FAILURE_CATEGORY_CONCURRENCY_SKIPPED,
      0,
    ]);
    expect((await client.get(holder.id)).state).toBe(JobState.JOB_STATE_RUNNING);
    await client.cancel(holder.id);
    await client.waitDone(holder.id);
  });

  it('refuses a bad limit, naming the field', async () => {
    const err = (await client.submit({ argv: ['true'], concurrencyGroup: 'g', concurrency: 0 }).catch((e: unknown) => e)) as {
      code?: number;
      details?: string;
    };
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/spec\.concurrency/);
  });
});

describe('concurrency groups across a leader failover (three peers, etcd)', () => {
  let etcd: TestEtcd;
  let raw: EtcdStore;
  let watch: Watch | undefined;

  beforeAll(async () => {
    etcd = await startEtcd();
    raw = await openEtcdStore({ endpoints: [etcd.endpoint] });
  });
  afterAll(async () => {
    await watch?.close();
    await raw?.close();
    await stopAll();
    await etcd?.stop();
  });

  it('never has more than N jobs of the group assigned or running, in the store, while the leader is killed; the queued ones run after', async () => {
    const peers = await startPeers(etcd, 'cg');
    const leaderId = await waitLeader(peers[0]!.client);
    const leader = peers.find((p) => p.id === leaderId)!;
    const others = peers.filter((p) => p !== leader);
    // Agents homed on the survivors, so the failover is the leader's alone.
    await startMeshAgents(others, 'cg', 2, 4);
    await others[0]!.client.waitAgents(2);

    // Every revision of every job record, as etcd orders them: the group's active jobs after each.
    const active = new Set<string>();
    let most = 0;
    const start = await raw.revision();
    watch = await raw.watch(
      '/runmesh/jobs/',
      {
        onEvents: (events) => {
          for (const e of events) {
            if (e.type !== 'put') continue;
            const r = decodeRecord(e.kv.value);
            if (r.job.spec.concurrencyGroup !== 'release') continue;
            if (isActive(r.job.state)) active.add(r.job.id);
            else active.delete(r.job.id);
          }
          most = Math.max(most, active.size);
        },
        onError: () => undefined,
      },
      start,
    );

    // The jobs run until the test lets them end: the group stays full through the failover, whatever the machine's load.
    const gate = join(await tempDir('runmesh-groups-'), 'go');
    const spec = { script: `while [ ! -e ${gate} ]; do sleep 0.05; done`, concurrencyGroup: 'release', concurrency: 2 };
    const jobs: Job[] = [];
    for (let i = 0; i < 4; i++) jobs.push(await others[i % 2]!.client.submit(spec));
    const ids = jobs.map((j) => j.id);
    await waitUntil(async () => (await Promise.all(ids.slice(0, 2).map((id) => others[0]!.client.get(id)))).every(running), {
      what: 'the group to be full',
      timeoutMs: 20_000,
    });
    const queued = await others[1]!.client.waitFor(ids[3]!, (j) => j.waitingOnGroup === 'release');
    expect(queued.waitingReason).toMatch(/^concurrency group release \(tenant default\) is full: 2\/2 running: job /);

    await leader.kill9();
    const survivors: MeshPeer[] = others;
    await waitLeader(survivors[0]!.client, leaderId);
    writeFileSync(gate, '');
    const done = await waitAllDone(
      survivors.map((p) => p.client),
      ids,
      60_000,
    );
    expect([...done.values()].map((j) => j.state)).toEqual(ids.map(() => JobState.JOB_STATE_SUCCEEDED));
    expect(most).toBe(2);
    expect(active.size).toBe(0);
  });
});
