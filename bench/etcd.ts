/**
 * Durable throughput on etcd, with the ceilings measured in the same run:
 * - runmesh on etcd: idle dispatch submit → assign against the floor of one
 *   durable etcd put; no-op jobs/s with simulated agents over real gRPC, and
 *   the CPU each process spent per job (what limits it on a small machine);
 * - raw etcd: transactions of 100 puts, 8 in flight (what batching could
 *   reach), and etcd's own CPU per put, from which the ceiling of a design
 *   with three durable writes per job follows;
 * - BullMQ on Redis (appendonly yes, appendfsync everysec): addBulk 20k, one
 *   worker at concurrency 100, the same no-op work.
 * It ends with the limits in figures from this run: the floor under idle
 * dispatch (a bare gRPC round trip plus one durable put, each after the same
 * idle pause as the dispatch loop's: any durable dispatch pays both), and the CPU per job that 2× BullMQ would allow on this machine's
 * cores against what etcd and the simulated agents alone spent.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { openEtcdStore } from '../control-plane/store/etcd.js';
import type { Store } from '../control-plane/store/store.js';
import { startEtcd, freePort } from '../test/support/etcd.js';
import { adminToken, TestClient } from '../test/support/client.js';
import { startServer, stopAll, tempDir } from '../test/support/processes.js';
import { sleep, waitUntil } from '../test/support/wait.js';
import { dispatchLatency, grpcBaseline, throughput } from './spine.js';
import { cpuSeconds, line, ms, round, summarize } from './stats.js';

const JOBS = 20_000;
/** Idle time before each floor sample, about what the dispatch loop waits between jobs. */
const IDLE_GAP_MS = 4;

/** Transactions of 100 puts, 8 in flight, for `seconds`: puts/s and etcd's CPU per put. */
async function rawEtcdPuts(store: Store, etcdPid: number, seconds: number): Promise<{ putsPerS: number; etcdUsPerPut: number }> {
  const value = 'x'.repeat(400);
  let puts = 0;
  const until = Date.now() + seconds * 1000;
  const worker = async (w: number): Promise<void> => {
    for (let i = 0; Date.now() < until; i++) {
      await store.txn({ success: Array.from({ length: 100 }, (_, k) => ({ type: 'put' as const, key: `/bench/${w}/${i}/${k}`, value })) });
      puts += 100;
    }
  };
  const t0 = Date.now();
  const cpu0 = cpuSeconds(etcdPid);
  await Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
  return { putsPerS: round(puts / ((Date.now() - t0) / 1000), 0), etcdUsPerPut: round(((cpuSeconds(etcdPid) - cpu0) * 1e6) / puts, 1) };
}

/** One single-put transaction at a time, each after `gapMs` idle: the floor under any durable dispatch. */
async function onePutLatency(store: Store, n: number, gapMs: number): Promise<{ p50: number; p99: number }> {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    await sleep(gapMs);
    const t0 = process.hrtime.bigint();
    await store.txn({ success: [{ type: 'put', key: `/bench/one/${i}`, value: 'x'.repeat(800) }] });
    samples.push(ms(t0, process.hrtime.bigint()));
  }
  return summarize(samples.slice(n / 10));
}

/** Starts `skeleton.js` (the bare durable I/O per job) on `etcdEndpoint`; resolves with its process and address. */
async function startSkeleton(etcdEndpoint: string, sharedKeys: boolean): Promise<{ proc: ChildProcess; address: string }> {
  const args = [join(fileURLToPath(new URL('.', import.meta.url)), 'skeleton.js'), etcdEndpoint, ...(sharedKeys ? ['--shared-keys'] : [])];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const address = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`skeleton did not start: ${out}`)), 20_000);
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /skeleton listening (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    proc.once('exit', (code) => reject(new Error(`skeleton exited ${code}: ${out}`)));
  });
  return { proc, address };
}

interface CpuPerJob {
  cp: number;
  etcd: number;
  bench: number;
}

/** No-op jobs/s on the control plane at `address` (process `cpPid`), with the CPU per job of it, etcd and the simulated agents (this process). */
async function measuredThroughput(
  address: string,
  cpPid: number,
  etcdPid: number,
  client: TestClient,
  jobs: number,
): Promise<{ tp: number; cpu: CpuPerJob; coresBusy: number }> {
  const cpu0 = { cp: cpuSeconds(cpPid), etcd: cpuSeconds(etcdPid), bench: cpuSeconds() };
  const t0 = Date.now();
  const tp = await throughput(address, client, jobs);
  const wall = (Date.now() - t0) / 1000;
  const perJob = (a: number, b: number): number => round(((b - a) * 1e6) / jobs, 0);
  const cpu = {
    cp: perJob(cpu0.cp, cpuSeconds(cpPid)),
    etcd: perJob(cpu0.etcd, cpuSeconds(etcdPid)),
    bench: perJob(cpu0.bench, cpuSeconds()),
  };
  return { tp, cpu, coresBusy: round(((cpu.cp + cpu.etcd + cpu.bench) * jobs) / 1e6 / wall, 2) };
}

/** The CPU per job as bench fields, the control plane's under `cpName`. */
function cpuFields(cpu: CpuPerJob, cpName: string): Record<string, number> {
  return { [`cpu_us_per_job_${cpName}`]: cpu.cp, cpu_us_per_job_etcd: cpu.etcd, cpu_us_per_job_bench_agents: cpu.bench };
}

/** The skeleton's jobs/s and CPU per job, once with a key per job, once with `sharedKeys`. */
async function skeletonThroughput(
  etcd: { endpoint: string; pid(): number },
  jobs: number,
  sharedKeys = false,
): Promise<{ tp: number; cpu: CpuPerJob }> {
  const sk = await startSkeleton(etcd.endpoint, sharedKeys);
  const client = new TestClient(sk.address);
  try {
    return await measuredThroughput(sk.address, sk.proc.pid!, etcd.pid(), client, jobs);
  } finally {
    client.close();
    sk.proc.kill('SIGTERM');
  }
}

async function bullmq(jobs: number): Promise<number | string> {
  if (!existsSync('/usr/bin/redis-server')) return 'skipped (redis-server not installed)';
  const { Queue, Worker, QueueEvents } = await import('bullmq');
  const port = await freePort();
  const dir = await tempDir('runmesh-bench-redis-');
  const redis = spawn(
    '/usr/bin/redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', ''],
    { stdio: 'ignore' },
  );
  try {
    const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
    await waitUntil(
      async () => {
        const q = new Queue('ping', { connection });
        const ok = await q.waitUntilReady().then(
          () => true,
          () => false,
        );
        await q.close();
        return ok;
      },
      { what: 'redis to answer', timeoutMs: 10_000, intervalMs: 50 },
    );
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
    for (let i = 0; i < jobs; i += 1000)
      await queue.addBulk(Array.from({ length: Math.min(1000, jobs - i) }, (_, k) => ({ name: 'n', data: { i: i + k } })));
    await finished;
    const rate = round(jobs / ((Date.now() - t0) / 1000), 0);
    await events.close();
    await queue.close();
    return rate;
  } finally {
    redis.kill('SIGKILL');
  }
}

export async function benchEtcd(): Promise<Record<string, number | string>> {
  const etcd = await startEtcd();
  try {
    const server = await startServer({ args: ['--store', `etcd://${etcd.endpoint.replace(/^https?:\/\//, '')}`, '--log-level', 'warn'] });
    const client = new TestClient(server.address, adminToken(server.dataDir));
    const lat = await dispatchLatency(server, client, 300);
    const store = await openEtcdStore({ endpoints: [etcd.endpoint], prefix: '/bench-raw', logger: pino({ level: 'silent' }) });
    // The dispatch loop is idle a few ms between jobs (the previous one's finish write): so is the floor.
    const put = await onePutLatency(store, 300, IDLE_GAP_MS);
    const hot = await grpcBaseline(server.address, 300);
    const rtt = await grpcBaseline(server.address, 300, IDLE_GAP_MS);
    line('etcd: dispatch submit→assign, idle (ms)', {
      ...lat,
      one_put_p50: put.p50,
      one_put_p99: put.p99,
      grpc_rtt_p50: rtt.p50,
      grpc_rtt_p99: rtt.p99,
      grpc_rtt_back_to_back_p50: hot.p50,
    });
    const { tp, cpu, coresBusy } = await measuredThroughput(server.address, server.proc.pid!, etcd.pid(), client, JOBS);
    line('etcd: no-op jobs/s, 16 sim agents', { jobs_per_s: tp, ...cpuFields(cpu, 'control_plane'), cores_busy: coresBusy });
    client.close();
    await server.stop();
    const raw = await rawEtcdPuts(store, etcd.pid(), 3);
    await store.close();
    // Three durable writes per job (submit, assign, finish); etcd alone on every core of this machine.
    const ceiling = round((availableParallelism() * 1e6) / (3 * raw.etcdUsPerPut), 0);
    line('etcd: raw txns of 100 puts, 8 in flight', {
      puts_per_s: raw.putsPerS,
      etcd_cpu_us_per_put: raw.etcdUsPerPut,
      ceiling_jobs_per_s_all_cores_to_etcd: ceiling,
    });
    const sk = await skeletonThroughput(etcd, JOBS);
    line('etcd: skeleton, the durable I/O alone', {
      jobs_per_s: sk.tp,
      'runmesh/skeleton': round(tp / sk.tp, 2),
      ...cpuFields(sk.cpu, 'skeleton'),
    });
    const shared = await skeletonThroughput(etcd, JOBS, true);
    line('etcd: skeleton, jobs sharing keys', { jobs_per_s: shared.tp, ...cpuFields(shared.cpu, 'skeleton') });
    const bull = await bullmq(JOBS);
    const ratio = typeof bull === 'number' ? round(tp / bull, 2) : 'n/a';
    const vsBull = (x: number): number | string => (typeof bull === 'number' ? round(x / bull, 2) : 'n/a');
    line('bullmq on redis (aof everysec), same work', {
      bullmq_jobs_per_s: bull,
      'runmesh/bullmq': ratio,
      'skeleton/bullmq': vsBull(sk.tp),
      'skeleton_shared_keys/bullmq': vsBull(shared.tp),
    });
    // What any design pays on this machine, against the targets (p50 ≤ 2 ms, ≥ 2× BullMQ).
    const floorP50 = round(rtt.p50 + put.p50);
    const limits: Record<string, number | string> = {
      dispatch_floor_p50_ms: floorP50,
      'dispatch_p50/floor': round(lat.p50 / floorP50, 2),
      dispatch_floor_p99_ms: round(rtt.p99 + put.p99),
    };
    if (typeof bull === 'number') {
      limits.cpu_us_per_job_budget_at_2x_bullmq = round((availableParallelism() * 1e6) / (2 * bull), 0);
      limits.cpu_us_per_job_etcd_plus_agents = cpu.etcd + cpu.bench;
      limits.cpu_us_per_job_all = cpu.cp + cpu.etcd + cpu.bench;
    }
    line('etcd: limits on this machine', limits);
    return { dispatch_p50: lat.p50, dispatch_p99: lat.p99, jobs_per_s: tp, bullmq: bull, ratio };
  } finally {
    await stopAll();
    await etcd.stop();
  }
}
