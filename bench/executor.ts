/**
 * The executor against the machine's floor, in one run (issue 17's speed table):
 * - the spawn floor: this Node process spawning /bin/true with piped stdio,
 *   16 in flight: spawns/s and the host's CPU per spawn;
 * - the executor alone (what an agent's attempts cost, no control plane):
 *   trivial jobs (`true`) through createExecutor and its supervisor, cgroup
 *   and spool included, 16 in flight;
 * - one real agent with 16 slots behind a real control plane (embedded store):
 *   trivial jobs submitted 16 at a time by this process, end to end; the
 *   host's CPU then counts control plane, agent, supervisor, jobs and client;
 * - submit → running on that agent, one job at a time;
 * - the private memory of an idle agent and its supervisor.
 * Targets are printed beside the figures; a figure that misses says so.
 */
import { spawn } from 'node:child_process';
import { pino } from 'pino';
import { AgentState } from '../proto/gen/runmesh/v1/cluster.js';
import type { ClientReadableStream } from '@grpc/grpc-js';
import { JobState, type WatchResponse } from '../proto/gen/runmesh/v1/job.js';
import { createExecutor } from '../agent/executor/index.js';
import { pidsWithArgPrefix } from '../agent/executor/testdata/proc.js';
import { adminToken, TERMINAL, TestClient } from '../test/support/client.js';
import { startAgent, startServer, stopAll, tempDir } from '../test/support/processes.js';
import { sleep, waitUntil, within } from '../test/support/wait.js';
import { join } from 'node:path';
import { hostBusySeconds, line, privateMb, round, summarize } from './stats.js';

const IN_FLIGHT = 16;

interface Rate {
  perS: number;
  hostCpuMs: number;
}

/** Runs `one` n times, `IN_FLIGHT` at a time: the rate, and the host's CPU per run. */
async function measure(n: number, one: (i: number) => Promise<void>): Promise<Rate> {
  let next = 0;
  const busy0 = hostBusySeconds();
  const t0 = Date.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      for (let i = next++; i < n; i = next++) await one(i);
    }),
  );
  const seconds = (Date.now() - t0) / 1000;
  return { perS: round(n / seconds, 1), hostCpuMs: round(((hostBusySeconds() - busy0) * 1000) / n, 2) };
}

function spawnTrue(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/true', [], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.resume();
    child.stderr.resume();
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`/bin/true exited ${code}`))));
  });
}

async function executorAlone(n: number): Promise<Rate & { containment: string }> {
  const workDir = await tempDir('runmesh-bench-exec-');
  const executor = createExecutor({ workDir, logger: pino({ level: 'silent' }) });
  await executor.recover(); // boots its supervisor, as an agent does at start
  await waitUntil(() => pidsWithArgPrefix(join(workDir, 'attempts', '.standby-')).length === 1, {
    what: 'the supervisor to boot',
    timeoutMs: 30_000,
  });
  const limits = { memoryBytes: 0, cpuMillis: 0, cpuWeight: 0, pids: 0 };
  const spec = { argv: ['true'], script: '', env: {}, graceSeconds: 1, executor: 'shell' as const, limits, network: true };
  const one = async (i: number): Promise<void> => {
    const h = await executor.start({ ...spec, jobId: `j_bench${i}`, attempt: 1, deadline: Date.now() + 60_000 });
    for await (const r of h.records(0, AbortSignal.timeout(60_000))) void r; // the agent reads every attempt's spool
    const status = await h.exited();
    if (status.failure !== 'none') throw new Error(`bench job ${i}: ${status.failure} ${status.message}`);
    await h.remove();
  };
  for (let i = 0; i < 20; i++) await one(n + i); // warm-up
  const rate = await measure(n, one);
  executor.close();
  return { ...rate, containment: executor.describe().containment };
}

/**
 * Job ends as one Watch stream sees them, as a CI client would follow its
 * jobs: polling Get for each job in flight would cost the control plane more
 * than the jobs do. `done(id)` resolves once the job is final.
 */
class Ends {
  private readonly final = new Map<string, JobState>();
  private readonly waiting = new Map<string, (state: JobState) => void>();
  private readonly stream: ClientReadableStream<WatchResponse>;

  constructor(client: TestClient) {
    this.stream = client.jobs.watch({ ids: [] });
    this.stream.on('data', (ev: WatchResponse) => {
      const job = ev.job;
      if (!job || !TERMINAL.has(job.state)) return;
      const wake = this.waiting.get(job.id);
      if (wake) wake(job.state);
      else this.final.set(job.id, job.state);
    });
    this.stream.on('error', () => undefined); // cancelled on close
  }

  done(id: string): Promise<JobState> {
    const seen = this.final.get(id);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve) => this.waiting.set(id, resolve));
  }

  close(): void {
    this.stream.cancel();
  }
}

async function realAgent(n: number): Promise<{ rate: Rate; running: { p50: number; p99: number }; idleMb: number }> {
  // Rate limits are for clients, not for a benchmark's one admin token.
  const server = await startServer({ args: ['--rate-token', '1000000', '--rate-tenant', '1000000'] });
  const client = new TestClient(server.address, adminToken(server.dataDir));
  try {
    const agent = await startAgent(server.address, { name: 'bench-16', slots: IN_FLIGHT, labels: 'agent=bench-16' });
    await waitUntil(
      async () => (await client.agents()).agents.some((a) => a.name === 'bench-16' && a.state === AgentState.AGENT_STATE_READY),
      {
        what: 'the agent to be ready',
        timeoutMs: 60_000,
        intervalMs: 50,
      },
    );
    await sleep(1500); // its supervisor boots, its first heartbeats go out
    const supervisors = (): number[] => pidsWithArgPrefix(join(agent.workDir, 'attempts', '.standby-'));
    const idleMb = round(privateMb(agent.proc.pid) + supervisors().reduce((mb, pid) => mb + privateMb(pid), 0), 1);
    const ends = new Ends(client);
    await sleep(200); // the watch is open before the first job
    const one = async (): Promise<void> => {
      const job = await client.submit({ argv: ['true'], selector: 'agent=bench-16' });
      const state = await within(ends.done(job.id), { what: `bench job ${job.id} to end`, timeoutMs: 60_000 });
      if (state !== JobState.JOB_STATE_SUCCEEDED) throw new Error(`bench job ${job.id} ended ${JobState[state]}`);
    };
    for (let i = 0; i < 20; i++) await one();
    const rate = await measure(n, one);
    ends.close();
    const samples: number[] = [];
    for (let i = 0; i < 100; i++) {
      const t0 = Date.now();
      const job = await client.submit({ script: 'date +%s%3N', selector: 'agent=bench-16' });
      await client.waitDone(job.id, 60_000);
      samples.push(Number((await client.logs(job.id)).stdout.trim()) - t0);
    }
    return { rate, running: summarize(samples), idleMb };
  } finally {
    client.close();
    await stopAll();
  }
}

const verdict = (ok: boolean): string => (ok ? 'met' : 'MISSED');

export async function benchExecutor(): Promise<void> {
  const floor = await measure(1000, spawnTrue);
  line('spawn floor: /bin/true, piped, 16 in flight', { spawns_per_s: floor.perS, host_cpu_ms_per_spawn: floor.hostCpuMs });
  const alone = await executorAlone(1000);
  line('executor alone: trivial jobs, 16 in flight', {
    jobs_per_s: alone.perS,
    'of_floor_%': round((100 * alone.perS) / floor.perS, 0),
    host_cpu_ms_per_job: alone.hostCpuMs,
    containment: JSON.stringify(alone.containment),
  });
  const real = await realAgent(500);
  const share = round((100 * real.rate.perS) / floor.perS, 0);
  line('one agent, 16 slots, end to end: `true` jobs', {
    jobs_per_s: real.rate.perS,
    'of_floor_%': share,
    target: '≥50%',
    result: verdict(share >= 50),
  });
  line('host CPU per trivial job (ms)', {
    end_to_end: real.rate.hostCpuMs,
    executor_alone: alone.hostCpuMs,
    bare_spawn: floor.hostCpuMs,
    target: '≤5',
    result: verdict(real.rate.hostCpuMs <= 5),
  });
  line('submit→running, real agent, embedded (ms)', {
    ...real.running,
    target: 'p50≤10 p99≤25',
    result: verdict(real.running.p50 <= 10 && real.running.p99 <= 25),
  });
  line('private memory, idle agent + supervisor (MB)', { total: real.idleMb, target: '≤40', result: verdict(real.idleMb <= 40) });
}
