/**
 * Retention and compaction in a running control plane on a real etcd: ended
 * jobs go after the retention, history is compacted while jobs keep flowing,
 * and the control plane's own watches carry on through it.
 */
import { status as Status } from '@grpc/grpc-js';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobState } from '../proto/gen/runmesh/v1/job.js';
import { ControlPlane } from '../control-plane/server.js';
import { isCompacted } from '../control-plane/store/errors.js';
import { openEtcdStore } from '../control-plane/store/etcd.js';
import { adminToken, TestClient } from './support/client.js';
import { startEtcd, type TestEtcd } from './support/etcd.js';
import { tempDir } from './support/processes.js';
import { simAgent } from './support/sim-agent.js';
import { waitUntil } from './support/wait.js';

const TOKEN = 'retention-test-token';
let etcd: TestEtcd;
beforeAll(async () => {
  etcd = await startEtcd();
});
afterAll(async () => {
  await etcd?.stop();
});

/** The etcd's cluster admin token: written by the first control plane started on it (the tests share the etcd). */
let token: string | undefined;
const clusterToken = (dataDir: string): string => (token ??= adminToken(dataDir));

describe('retention and compaction', () => {
  it('deletes ended jobs after the retention and compacts etcd while jobs keep flowing', async () => {
    const cp = await ControlPlane.start({
      listen: ['127.0.0.1:0'],
      httpListen: '127.0.0.1:0',
      dataDir: await tempDir('runmesh-retention-'),
      joinToken: TOKEN,
      store: `etcd://${etcd.endpoint.replace(/^https?:\/\//, '')}`,
      jobRetentionMs: 1000,
      compactionIntervalMs: 500,
      logger: pino({ level: 'silent' }),
    });
    const client = new TestClient(cp.address, clusterToken(cp.options.dataDir));
    const agent = simAgent(cp.address, { name: 'keeper', token: TOKEN, slots: 4 });
    const raw = await openEtcdStore({ endpoints: [etcd.endpoint], prefix: '' });
    try {
      await agent.welcomed;
      const first = await Promise.all(Array.from({ length: 20 }, () => client.submit({ argv: ['true'] })));
      for (const j of first) expect((await client.waitDone(j.id)).state).toBe(JobState.JOB_STATE_SUCCEEDED);
      const startRevision = await raw.revision();

      // Gone once the retention has passed: Get answers NOT_FOUND, List no longer shows them.
      let missing: { code?: number; details?: string } = {};
      await waitUntil(
        async () =>
          await client.get(first[0]!.id).then(
            () => false,
            (e: typeof missing) => ((missing = e), e.code === Status.NOT_FOUND),
          ),
        { what: 'the ended jobs to be deleted', timeoutMs: 15_000 },
      );
      expect(missing.details).toBe(
        `job ${first[0]!.id} not found (jobs are deleted 1s after they end, or oldest first past 100,000 ended; it may have been)`,
      );
      const listed = (): Promise<string[]> =>
        new Promise((resolve, reject) =>
          client.jobs.list(
            {
              states: [],
              namePrefix: '',
              tenant: '',
              pageSize: 1000,
              pageToken: '',
              oldestFirst: false,
              labels: '',
              createdAfter: undefined,
              createdBefore: undefined,
            },
            (e, r) => (e ? reject(e) : resolve(r.jobs.map((j) => j.id))),
          ),
        );
      await waitUntil(async () => !(await listed()).some((id) => first.some((f) => f.id === id)), {
        what: 'every one of them to be deleted',
        timeoutMs: 15_000,
      });

      // History before a later tick is compacted: a watch from the start revision is refused.
      await waitUntil(
        async () => {
          const refused = await new Promise<boolean>((resolve) => {
            void raw
              .watch('/runmesh/', { onEvents: () => undefined, onError: (e) => resolve(isCompacted(e)) }, 1)
              .then((w) => setTimeout(() => (void w.close(), resolve(false)), 300));
          });
          return refused && (await raw.revision()) > startRevision;
        },
        { what: 'a compaction past the first jobs', timeoutMs: 15_000 },
      );

      // The control plane's watches carried on: new jobs run and are seen to end.
      const later = await Promise.all(Array.from({ length: 10 }, () => client.submit({ argv: ['true'] })));
      for (const j of later) expect((await client.waitDone(j.id)).state).toBe(JobState.JOB_STATE_SUCCEEDED);

      // And /metrics says what housekeeping did.
      const metrics = await (await fetch(`http://${cp.httpAddress}/metrics`)).text();
      const figure = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1]);
      expect(figure('runmesh_retention_jobs_deleted_total')).toBeGreaterThanOrEqual(first.length);
      expect(figure('runmesh_store_compacted_revision')).toBeGreaterThan(0);
    } finally {
      agent.close();
      client.close();
      await raw.close();
      await cp.close();
    }
  });

  it('keeps at most --max-ended-jobs ended jobs, and the logs of the deleted ones go with them', async () => {
    const dataDir = await tempDir('runmesh-retention-cap-');
    const cp = await ControlPlane.start({
      listen: ['127.0.0.1:0'],
      httpListen: '127.0.0.1:0',
      dataDir,
      joinToken: TOKEN,
      store: `etcd://${etcd.endpoint.replace(/^https?:\/\//, '')}`,
      jobRetentionMs: 0,
      maxEndedJobs: 5,
      logger: pino({ level: 'silent' }),
    });
    const client = new TestClient(cp.address, clusterToken(cp.options.dataDir));
    const agent = simAgent(cp.address, { name: 'capped', token: TOKEN, slots: 4, log: 'done\n' });
    try {
      await agent.welcomed;
      // Jobs the first test left in this etcd count too: being older, they go first.
      const jobs: string[] = [];
      for (let i = 0; i < 12; i++) jobs.push((await client.submit({ argv: ['true'] })).id);
      for (const id of jobs) expect((await client.waitDone(id)).state).toBe(JobState.JOB_STATE_SUCCEEDED);
      expect((await client.logs(jobs.at(-1)!)).stdout).toBe('done\n');
      const kept = jobs.slice(-5);
      const exists = (id: string): Promise<boolean> =>
        client.get(id).then(
          () => true,
          () => false,
        );
      // The sweep runs every 10 s at most; the newest five stay.
      await waitUntil(async () => !(await exists(jobs[jobs.length - 6]!)), {
        what: 'the jobs over the cap to be deleted',
        timeoutMs: 25_000,
      });
      for (const id of kept) expect(await exists(id)).toBe(true);
      for (const id of jobs.slice(0, -5)) expect(await exists(id)).toBe(false);
      const logDirs = async (): Promise<string[]> =>
        (await readdir(join(dataDir, 'blobs', 'logs')).catch(() => [] as string[])).filter((d) => jobs.includes(d));
      await waitUntil(async () => (await logDirs()).length === 5, { what: 'only the kept jobs to have logs', timeoutMs: 10_000 });
      expect((await logDirs()).sort()).toEqual([...kept].sort());
    } finally {
      agent.close();
      client.close();
      await cp.close();
    }
  });
});
