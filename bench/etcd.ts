/**
 * Durable throughput on etcd, with the ceilings measured in the same run:
 * - runmesh on etcd: idle dispatch submit → assign, and no-op jobs/s with
 *   simulated agents over real gRPC;
 * - raw etcd: transactions of 100 puts, 8 in flight (what batching could reach);
 * - BullMQ on Redis (appendonly yes, appendfsync everysec): addBulk 20k, one
 *   worker at concurrency 100, the same no-op work.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Etcd3 } from 'etcd3';
import { startEtcd, freePort } from '../test/support/etcd.js';
import { TestClient } from '../test/support/client.js';
import { startServer, stopAll, tempDir } from '../test/support/processes.js';
import { dispatchLatency, throughput } from './spine.js';
import { line, round } from './stats.js';

const JOBS = 20_000;

async function rawEtcdPuts(endpoint: string, seconds: number): Promise<number> {
  const client = new Etcd3({ hosts: endpoint });
  const value = 'x'.repeat(400);
  let puts = 0;
  const until = Date.now() + seconds * 1000;
  const worker = async (w: number): Promise<void> => {
    for (let i = 0; Date.now() < until; i++) {
      const ops = Array.from({ length: 100 }, (_, k) => client.put(`/bench/${w}/${i}/${k}`).value(value));
      await client.if(`/bench/${w}/guard`, 'Version', '==', 0).then(...ops).commit();
      puts += 100;
    }
  };
  const t0 = Date.now();
  await Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
  client.close();
  return round(puts / ((Date.now() - t0) / 1000), 0);
}

async function bullmq(jobs: number): Promise<number | string> {
  if (!existsSync('/usr/bin/redis-server')) return 'skipped (redis-server not installed)';
  const { Queue, Worker, QueueEvents } = await import('bullmq');
  const port = await freePort();
  const dir = await tempDir('runmesh-bench-redis-');
  const redis = spawn('/usr/bin/redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', ''], { stdio: 'ignore' });
  try {
    const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
    for (let i = 0; i < 100; i++) {
      const q = new Queue('ping', { connection });
      const ok = await q.waitUntilReady().then(() => true, () => false);
      await q.close();
      if (ok) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const queue = new Queue('noop', { connection });
    const events = new QueueEvents('noop', { connection });
    await events.waitUntilReady();
    let done = 0;
    const finished = new Promise<void>((resolve) => {
      const worker = new Worker('noop', async () => undefined, { connection, concurrency: 100 });
      worker.on('completed', () => {
        if (++done === jobs) void worker.close().then(() => resolve());
      });
    });
    const t0 = Date.now();
    for (let i = 0; i < jobs; i += 1000) await queue.addBulk(Array.from({ length: Math.min(1000, jobs - i) }, (_, k) => ({ name: 'n', data: { i: i + k } })));
    await finished;
    const rate = round(jobs / ((Date.now() - t0) / 1000), 0);
    await events.close();
    await queue.close();
    return rate;
  } finally {
    redis.kill('SIGKILL');
  }
}

export async function benchEtcd(): Promise<void> {
  const etcd = await startEtcd();
  try {
    const server = await startServer({ args: ['--store', `etcd://${etcd.endpoint.replace(/^https?:\/\//, '')}`, '--log-level', 'warn'] });
    const client = new TestClient(server.address);
    const lat = await dispatchLatency(server, client, 300);
    line('etcd: dispatch submit→assign, idle (ms)', lat);
    const tp = await throughput(server, client, JOBS);
    client.close();
    await server.stop();
    const raw = await rawEtcdPuts(etcd.endpoint, 3);
    const bull = await bullmq(JOBS);
    line('etcd: no-op jobs/s vs ceilings', {
      runmesh_jobs_per_s: tp,
      raw_etcd_puts_per_s: raw,
      bullmq_jobs_per_s: bull,
      'runmesh/bullmq': typeof bull === 'number' ? round(tp / bull, 2) : 'n/a',
    });
  } finally {
    await stopAll();
    await etcd.stop();
  }
}
