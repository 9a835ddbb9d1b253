/**
 * Spine figures on the embedded store, control plane as its own process:
 * - dispatch latency submit → agent receives Assign (idle, simulated agent),
 *   against a raw gRPC unary round trip measured on the same server;
 * - no-op job throughput with simulated agents, against the store's raw
 *   single-put transaction rate measured in the same run;
 * - submit → job process running with a real agent;
 * - control-plane memory with 1,000 simulated agents; an idle agent's memory.
 */
import { Client, credentials } from '@grpc/grpc-js';
import { pino } from 'pino';
import { AgentServiceClient } from '../proto/gen/runmesh/v1/agent.js';
import { AgentState } from '../proto/gen/runmesh/v1/cluster.js';
import { JobState } from '../proto/gen/runmesh/v1/job.js';
import { openEmbeddedStore } from '../control-plane/store/embedded.js';
import { adminToken, TestClient } from '../test/support/client.js';
import { startAgent, startServer, stopAll, tempDir, TOKEN, type ServerProc } from '../test/support/processes.js';
import { simAgent, type SimAgent } from '../test/support/sim-agent.js';
import { sleep, waitUntil, within } from '../test/support/wait.js';
import { join } from 'node:path';
import { pidsWithArgPrefix } from '../agent/executor/testdata/proc.js';
import { authShare, gateMicros } from './auth.js';
import { hostBusySeconds, line, ms, privateMb, round, rssMb, summarize } from './stats.js';

/**
 * A raw unary round trip (grpc.health.v1 Check, empty request) on the same
 * server: the floor. Back to back by default; with `gapMs`, each call after
 * that long idle, as an idle dispatch is: on this machine an idle process
 * takes longer to wake (2.8 ms against 1.6 ms back to back for a bare grpc-js pair).
 */
export async function grpcBaseline(address: string, n: number, gapMs = 0): Promise<{ p50: number; p99: number }> {
  const raw = new Client(address, credentials.createInsecure());
  const id = (b: Buffer): Buffer => b;
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    if (gapMs > 0) await sleep(gapMs);
    const t0 = process.hrtime.bigint();
    await new Promise((resolve, reject) =>
      raw.makeUnaryRequest('/grpc.health.v1.Health/Check', id, id, Buffer.alloc(0), (e, r) => (e ? reject(e) : resolve(r))),
    );
    samples.push(ms(t0, process.hrtime.bigint()));
  }
  raw.close();
  return summarize(samples.slice(n / 10));
}

/**
 * Idle dispatch: one job at a time into a quiet cluster, submit → the agent
 * holds its Assign. The next job waits until the previous one is finished
 * and acknowledged, so no earlier write shares the store's commit with it.
 */
export async function dispatchLatency(server: ServerProc, client: TestClient, n: number): Promise<{ p50: number; p99: number }> {
  const assigned = new Waiters<bigint>();
  const acked = new Waiters<void>();
  const agent = simAgent(server.address, {
    name: 'lat',
    token: TOKEN,
    slots: 4,
    labels: { lat: 'true' },
    onAssign: (id, at) => assigned.settle(id, at),
    onResultAck: (id) => acked.settle(id, undefined),
  });
  await agent.welcomed;
  await sleep(200);
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    // Pinned to the measuring agent: the cluster may hold others (see the crowd in benchSpine).
    const job = await client.submit({ argv: ['true'], selector: 'lat=true' });
    samples.push(ms(t0, await assigned.wait(job.id)));
    await acked.wait(job.id);
  }
  agent.close();
  return summarize(samples.slice(n / 10));
}

/** Values keyed by job id that may arrive before anyone waits for them (an Assign can beat Submit's answer). */
class Waiters<T> {
  private readonly early = new Map<string, T>();
  private readonly waiting = new Map<string, (v: T) => void>();

  settle(id: string, value: T): void {
    const w = this.waiting.get(id);
    this.waiting.delete(id);
    if (w) w(value);
    else this.early.set(id, value);
  }

  wait(id: string): Promise<T> {
    if (this.early.has(id)) {
      const v = this.early.get(id) as T;
      this.early.delete(id);
      return Promise.resolve(v);
    }
    return new Promise((resolve) => this.waiting.set(id, resolve));
  }
}

/**
 * No-op jobs/s: 16 simulated agents of 64 slots on 4 shared channels, `jobs`
 * submitted in batches of 1000, until every result is acknowledged (the
 * control plane acknowledges a result once the job's end is stored). Bounded:
 * throws if the jobs are not all done within two minutes.
 */
export async function throughput(address: string, client: TestClient, jobs: number): Promise<number> {
  let acked = 0;
  let allAcked!: () => void;
  const done = new Promise<void>((r) => (allAcked = r));
  const onResultAck = (): void => {
    if (++acked === jobs) allAcked();
  };
  const shared = Array.from({ length: 4 }, () => new AgentServiceClient(address, credentials.createInsecure()));
  const agents: SimAgent[] = Array.from({ length: 16 }, (_, i) =>
    simAgent(address, { name: `tp-${i}`, token: TOKEN, slots: 64, client: shared[i % 4], onResultAck }),
  );
  try {
    await Promise.all(agents.map((a) => a.welcomed));
    const t0 = process.hrtime.bigint();
    const batch = 1000;
    const submits: Promise<unknown>[] = [];
    for (let i = 0; i < jobs; i += batch) {
      const specs = Array.from({ length: Math.min(batch, jobs - i) }, () => client.spec({ argv: ['true'] }));
      submits.push(new Promise((r, j) => client.jobs.submitBatch({ specs }, (e, res) => (e ? j(e) : r(res)))));
    }
    await Promise.all(submits);
    await within(done, { what: `all ${jobs} jobs to be done (throughput)`, timeoutMs: 120_000 }).catch((err: Error) => {
      throw new Error(`${err.message}: ${acked} done`);
    });
    return round(jobs / (ms(t0, process.hrtime.bigint()) / 1000), 0);
  } finally {
    agents.forEach((a) => a.close());
    shared.forEach((c) => c.close());
  }
}

async function storeCeiling(n: number): Promise<number> {
  const dir = await tempDir('runmesh-bench-store-');
  const store = await openEmbeddedStore({ dir, logger: pino({ level: 'silent' }) });
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: n }, (_, i) => store.txn({ success: [{ type: 'put', key: `/bench/${i}`, value: 'x'.repeat(400) }] })),
  );
  const rate = n / (ms(t0, process.hrtime.bigint()) / 1000);
  await store.close();
  return round(rate, 0);
}

/**
 * Submit → the job's process running, and submit → SUCCEEDED as the control
 * plane recorded it, one job at a time, on a real agent (with or without its
 * standby supervisors). Back to back, or `gapMs` apart: a new standby takes
 * about Node's start-up (0.12-0.15 s here) to boot, which back to back only
 * the first jobs wait for, since a supervisor back from its attempt takes the
 * next. Also the machine's CPU per job (every process, the kernel's share
 * included), where a cold start pays a Node start-up each time.
 */
async function realAgentStart(
  server: ServerProc,
  client: TestClient,
  n: number,
  standby: boolean,
  gapMs = 0,
): Promise<{ p50: number; p99: number; done: { p50: number; p99: number }; hostCpuMs: number }> {
  // A name of its own per run: each run's agent has a fresh work dir, so no credential, and an enrolled name is not taken again.
  const name = !standby ? 'real-cold' : gapMs > 0 ? 'real-spaced' : 'real';
  const agent = await startAgent(server.address, {
    name,
    slots: 2,
    labels: `agent=${name}`,
    args: standby ? [] : ['--no-standby-supervisor'],
  });
  await waitUntil(async () => (await client.agents()).agents.some((a) => a.name === name && a.state === AgentState.AGENT_STATE_READY), {
    what: `agent ${name} to be ready`,
    timeoutMs: 60_000,
    intervalMs: 50,
  });
  if (standby)
    await waitUntil(() => pidsWithArgPrefix(join(agent.workDir, 'attempts', '.standby-')).length > 0, {
      what: `agent ${name}'s standby supervisor to boot`,
      timeoutMs: 30_000,
    });
  const samples: number[] = [];
  const done: number[] = [];
  const busy0 = hostBusySeconds();
  for (let i = 0; i < n; i++) {
    const t0 = Date.now();
    const job = await client.submit({ script: 'date +%s%3N', selector: `agent=${name}` });
    const end = await client.waitDone(job.id);
    // A lost or failed attempt would read as a fast one (or a retried slow one): the figures must not hide it.
    if (end.state !== JobState.JOB_STATE_SUCCEEDED || end.attempt !== 1)
      throw new Error(
        `real agent job ${job.id} ended ${JobState[end.state]} on attempt ${end.attempt}: ${end.attempts.at(-1)?.message ?? ''}`,
      );
    done.push(Date.parse(end.updatedAt ?? '') - Date.parse(end.createdAt ?? ''));
    const started = Number((await client.logs(job.id)).stdout.trim());
    samples.push(started - t0);
    if (gapMs > 0) await sleep(gapMs);
  }
  const hostCpuMs = round(((hostBusySeconds() - busy0) * 1000) / n, 1);
  await agent.stop();
  return { ...summarize(samples), done: summarize(done), hostCpuMs };
}

async function memory(): Promise<{
  base: number;
  with1000: number;
  perAgentKb: number;
  idleAgent: number;
  idleAgentOwn: number;
  standby: number;
  standbyOwn: number;
  crowded: { p50: number; p99: number };
}> {
  const server = await startServer({ args: ['--heartbeat-timeout', '60s'] });
  const client = new TestClient(server.address, adminToken(server.dataDir));
  await sleep(500);
  const base = rssMb(server.proc.pid);
  const channels = Array.from({ length: 10 }, () => new AgentServiceClient(server.address, credentials.createInsecure()));
  const agents = Array.from({ length: 1000 }, (_, i) =>
    simAgent(server.address, { name: `mem-${i}`, token: TOKEN, slots: 4, client: channels[i % 10] }),
  );
  await Promise.all(agents.map((a) => a.welcomed));
  await sleep(1000);
  const with1000 = rssMb(server.proc.pid);
  // Every round routes over all of them: dispatch must not slow down with the size of the cluster.
  const crowded = await dispatchLatency(server, client, 200);
  agents.forEach((a) => a.close());
  channels.forEach((c) => c.close());
  const agent = await startAgent(server.address, { name: 'idle' });
  await client.waitAgents(1);
  await sleep(1500);
  const idleAgent = rssMb(agent.proc.pid);
  const idleAgentOwn = privateMb(agent.proc.pid);
  const standbys = pidsWithArgPrefix(join(agent.workDir, 'attempts', '.standby-'));
  const standby = standbys.reduce((mb, pid) => mb + rssMb(pid), 0);
  const standbyOwn = standbys.reduce((mb, pid) => mb + privateMb(pid), 0);
  client.close();
  await server.stop();
  await agent.stop();
  return {
    base,
    with1000,
    perAgentKb: round(((with1000 - base) * 1024) / 1000, 1),
    idleAgent,
    idleAgentOwn,
    standby: round(standby, 1),
    standbyOwn: round(standbyOwn, 1),
    crowded,
  };
}

export async function benchSpine(): Promise<void> {
  try {
    const server = await startServer();
    const client = new TestClient(server.address, adminToken(server.dataDir));
    const base = await grpcBaseline(server.address, 500);
    line('baseline gRPC unary round trip (ms)', base);
    const lat = await dispatchLatency(server, client, 300);
    line('dispatch submit→assign, idle (ms)', { ...lat, 'p50/baseline': round(lat.p50 / base.p50, 1) });
    const gate = await gateMicros();
    line('auth gate per call (µs), against idle dispatch', { gate_us: gate, 'share_of_dispatch_p50_%': authShare(gate, lat.p50) });
    const tp = await throughput(server.address, client, 20_000);
    const ceiling = await storeCeiling(20_000);
    line('no-op jobs/s, 16 sim agents, embedded', {
      jobs_per_s: tp,
      store_txn_per_s: ceiling,
      'ratio (txn per job)': round(ceiling / tp, 1),
    });
    const cold = await realAgentStart(server, client, 20, false);
    const real = await realAgentStart(server, client, 20, true);
    const spaced = await realAgentStart(server, client, 20, true, 400);
    const row = (pick: (f: typeof real) => { p50: number; p99: number }): Record<string, number> => ({
      back_to_back_p50: pick(real).p50,
      back_to_back_p99: pick(real).p99,
      spaced_400ms_p50: pick(spaced).p50,
      spaced_400ms_p99: pick(spaced).p99,
      cold_supervisor_p50: pick(cold).p50,
      cold_supervisor_p99: pick(cold).p99,
    });
    line(
      'submit→process running, real agent (ms)',
      row((f) => f),
    );
    line(
      'submit→SUCCEEDED, real agent, job `date` (ms)',
      row((f) => f.done),
    );
    // Everything the machine did per job: control plane, agent, supervisors, the job, this client.
    line('host CPU per job, real agent, job `date` (ms)', {
      back_to_back: real.hostCpuMs,
      spaced_400ms: spaced.hostCpuMs,
      cold_supervisor: cold.hostCpuMs,
    });
    client.close();
    await server.stop();
    const mem = await memory();
    line('dispatch submit→assign, 1,000 idle sim agents connected (ms)', {
      ...mem.crowded,
      'p50/alone': round(mem.crowded.p50 / lat.p50, 2),
    });
    line('memory (RSS MB)', {
      control_plane_idle: mem.base,
      with_1000_sim_agents: mem.with1000,
      per_agent_kb: mem.perAgentKb,
      idle_agent: mem.idleAgent,
      its_standby_supervisor: mem.standby,
    });
    // RSS counts the Node binary's pages, shared by every Node process on the host; this is what each one adds.
    line('memory private to the process (MB)', { idle_agent: mem.idleAgentOwn, its_standby_supervisor: mem.standbyOwn });
  } finally {
    await stopAll();
  }
}
