/**
 * What TLS to etcd costs, measured in one run on the same machine: runmesh
 * on a plaintext etcd, on one with TLS and client certificates, and on one
 * that adds etcd's own auth (a token on every call). For each: idle dispatch
 * submit → assign, no-op jobs/s with simulated agents and the CPU the control
 * plane and etcd spent per job, and one durable put through the store; then
 * each against plaintext as ratios. The setups take turns, twice, and the
 * better round of each counts: other load on a shared machine only ever
 * slows a round down.
 */
import { pino } from 'pino';
import { openStore } from '../control-plane/store/index.js';
import { startEtcd, type TestEtcd, type TestEtcdOptions } from '../test/support/etcd.js';
import { adminToken, TestClient } from '../test/support/client.js';
import { etcdFlagArgs } from '../test/support/mesh.js';
import { startServer, stopAll, tempDir } from '../test/support/processes.js';
import { sleep } from '../test/support/wait.js';
import { dispatchLatency, throughput } from './spine.js';
import { cpuSeconds, line, ms, round, summarize } from './stats.js';

const JOBS = 10_000;
const SAMPLES = 300;
const ROUNDS = 2;
/** Idle time before each put sample, about what the dispatch loop waits between jobs. */
const IDLE_GAP_MS = 4;

interface Figures {
  dispatch_p50: number;
  dispatch_p99: number;
  jobs_per_s: number;
  cpu_us_per_job_control_plane: number;
  cpu_us_per_job_etcd: number;
  put_p50: number;
  put_p99: number;
}

const SETUPS: Array<[string, TestEtcdOptions]> = [
  ['plaintext', {}],
  ['tls', { tls: true }],
  ['tls+auth', { tls: true, auth: true }],
];

export async function benchEtcdTls(): Promise<Record<string, Figures>> {
  const best: Record<string, Figures> = {};
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, options] of SETUPS) {
      // A fresh etcd each time: a second peer on a used store meets the first one's agents and tokens.
      const etcd = await startEtcd(options);
      try {
        const r = await measure(etcd);
        const kept = best[name];
        best[name] = kept ? better(kept, r) : r;
      } finally {
        await stopAll();
        await etcd.stop();
      }
    }
  }
  for (const [name] of SETUPS) line(`etcd ${name}: best of ${ROUNDS}`, { ...best[name]! });
  const plain = best.plaintext!;
  for (const [name] of SETUPS.slice(1)) {
    const r = best[name]!;
    line(`etcd ${name} vs plaintext`, {
      'dispatch_p50/plain': round(r.dispatch_p50 / plain.dispatch_p50, 2),
      'dispatch_p99/plain': round(r.dispatch_p99 / plain.dispatch_p99, 2),
      'jobs_per_s/plain': round(r.jobs_per_s / plain.jobs_per_s, 2),
      'cpu_control_plane/plain': round(r.cpu_us_per_job_control_plane / plain.cpu_us_per_job_control_plane, 2),
      'cpu_etcd/plain': round(r.cpu_us_per_job_etcd / plain.cpu_us_per_job_etcd, 2),
      'put_p50/plain': round(r.put_p50 / plain.put_p50, 2),
    });
  }
  return best;
}

/** Each figure from whichever round did better on it. */
function better(a: Figures, b: Figures): Figures {
  return {
    dispatch_p50: Math.min(a.dispatch_p50, b.dispatch_p50),
    dispatch_p99: Math.min(a.dispatch_p99, b.dispatch_p99),
    jobs_per_s: Math.max(a.jobs_per_s, b.jobs_per_s),
    cpu_us_per_job_control_plane: Math.min(a.cpu_us_per_job_control_plane, b.cpu_us_per_job_control_plane),
    cpu_us_per_job_etcd: Math.min(a.cpu_us_per_job_etcd, b.cpu_us_per_job_etcd),
    put_p50: Math.min(a.put_p50, b.put_p50),
    put_p99: Math.min(a.put_p99, b.put_p99),
  };
}

async function measure(etcd: TestEtcd): Promise<Figures> {
  const server = await startServer({ args: ['--store', etcd.storeUrl, ...etcdFlagArgs(etcd.flags), '--log-level', 'warn'] });
  const client = new TestClient(server.address, adminToken(server.dataDir));
  try {
    const lat = await dispatchLatency(server, client, SAMPLES);
    const cpu0 = { cp: cpuSeconds(server.proc.pid), etcd: cpuSeconds(etcd.pid()) };
    const tp = await throughput(server.address, client, JOBS);
    const perJob = (from: number, to: number): number => round(((to - from) * 1e6) / JOBS, 0);
    const cp = perJob(cpu0.cp, cpuSeconds(server.proc.pid));
    const etcdCpu = perJob(cpu0.etcd, cpuSeconds(etcd.pid()));
    const put = await onePut(etcd);
    return {
      dispatch_p50: lat.p50,
      dispatch_p99: lat.p99,
      jobs_per_s: tp,
      cpu_us_per_job_control_plane: cp,
      cpu_us_per_job_etcd: etcdCpu,
      put_p50: put.p50,
      put_p99: put.p99,
    };
  } finally {
    client.close();
    await server.stop();
  }
}

/** One single-put transaction at a time through the store's hot path, each after the dispatch loop's idle gap. */
async function onePut(etcd: TestEtcd): Promise<{ p50: number; p99: number }> {
  const store = await openStore(etcd.storeUrl, await tempDir('runmesh-bench-'), pino({ level: 'silent' }), etcd.flags);
  try {
    const samples: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      await sleep(IDLE_GAP_MS);
      const t0 = process.hrtime.bigint();
      await store.txn({ success: [{ type: 'put', key: `/runmesh/bench/one/${i}`, value: 'x'.repeat(800) }] });
      samples.push(ms(t0, process.hrtime.bigint()));
    }
    return summarize(samples.slice(SAMPLES / 10));
  } finally {
    await store.close();
  }
}
