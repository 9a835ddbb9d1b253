/**
 * The fault suite (issue 16): scenarios against real processes, each checked
 * by the history checker (history.ts) and reporting its figures. The fast
 * ones run with the tests; the long ones with `npm run chaos -- --long`.
 */
import { execFileSync } from 'node:child_process';
import { Etcd3 } from 'etcd3';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { AgentState } from '../../proto/gen/runmesh/v1/cluster.js';
import { JobState } from '../../proto/gen/runmesh/v1/job.js';
import { adminToken, TestClient } from '../support/client.js';
import { startEtcd, type TestEtcd } from '../support/etcd.js';
import {
  PEER_TTL_SECONDS,
  startMeshAgents,
  startPeers,
  waitAgentsOn,
  waitAllDone,
  waitLeader,
  type MeshAgent,
  type MeshPeer,
} from '../support/mesh.js';
import { startAgent, startServer, stopAll, tempDir, type AgentProc } from '../support/processes.js';
import { sleep, waitUntil } from '../support/wait.js';
import { batchLoad } from './batch-load.js';
import { startEtcdProxy } from './etcd-proxy.js';
import { checkHistory, ledgerScript, recordFigures } from './history.js';

const LONG = process.env.RUNMESH_CHAOS_LONG === '1';
/** A long scenario: skipped, saying so in its name, unless `npm run chaos -- --long`. */
const long = LONG ? it : it.skip;
const LONG_REASON = ' (long: run with npm run chaos -- --long)';
/** How long the randomised run injects faults (RUNMESH_CHAOS_SECONDS, default 120). */
const RANDOM_SECONDS = Number(process.env.RUNMESH_CHAOS_SECONDS ?? 120);
/** Trivial jobs in the batch-load run (RUNMESH_CHAOS_TRIVIAL_JOBS, default 5000; 300 of them took 23 s here, too long for CI). */
const TRIVIAL_JOBS = Number(process.env.RUNMESH_CHAOS_TRIVIAL_JOBS ?? 5000);

const clients: TestClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await stopAll();
});

let etcd: TestEtcd | undefined;
afterAll(async () => {
  await etcd?.stop();
});

async function ledgerFile(): Promise<string> {
  return join(await tempDir('runmesh-chaos-'), 'ledger');
}

function track(c: TestClient): TestClient {
  clients.push(c);
  return c;
}

describe('fault suite', () => {
  it('agent kill -9 ten times mid-job: one attempt each, logs whole', { timeout: 120_000 }, async () => {
    const server = await startServer({ args: ['--heartbeat-timeout', '10s'] });
    const client = track(new TestClient(server.address, adminToken(server.dataDir)));
    let agent = await startAgent(server.address, { name: 'phoenix', slots: 4 });
    await client.waitAgents(1);
    const ledger = await ledgerFile();
    const lines = 80;
    const ids = await Promise.all([1, 2, 3].map(async () => (await client.submit({ script: ledgerScript(ledger, lines) })).id));
    await waitUntil(async () => (await Promise.all(ids.map((id) => client.get(id)))).every((j) => j.state === JobState.JOB_STATE_RUNNING), {
      what: 'the jobs to run',
    });
    for (let i = 0; i < 10; i++) {
      await sleep(300); // deliberate: the kills are spread over the jobs' run
      await agent.kill9();
      agent = await startAgent(server.address, { name: 'phoenix', slots: 4, workDir: agent.workDir });
    }
    const h = await checkHistory([client], ids, { ledger, lines, timeoutMs: 60_000 });
    recordFigures('agent kill -9 x10 mid-job', h);
    expect(h.violations).toEqual([]);
    expect(h.retried).toBe(0);
  });

  it('a zombie agent (SIGSTOP past its timeout, then SIGCONT): re-queued once, its late result fenced', { timeout: 120_000 }, async () => {
    const server = await startServer(); // --heartbeat-timeout 2s
    const client = track(new TestClient(server.address, adminToken(server.dataDir)));
    const zombie = await startAgent(server.address, { name: 'zombie', slots: 1 });
    await client.waitAgents(1);
    const ledger = await ledgerFile();
    const lines = 60;
    const job = await client.submit({ script: ledgerScript(ledger, lines), maxAttempts: 3 });
    await client.waitFor(job.id, (j) => j.state === JobState.JOB_STATE_RUNNING);
    await startAgent(server.address, { name: 'healthy', slots: 1 });
    await client.waitAgents(2);
    const stoppedAt = Date.now();
    zombie.proc.kill('SIGSTOP');
    const requeued = await client.waitFor(job.id, (j) => j.attempts.length >= 2 && j.attempts[1]!.agent === 'healthy', 30_000);
    const requeueMs = Date.parse(requeued.attempts[1]!.assignedAt ?? '') - stoppedAt;
    zombie.proc.kill('SIGCONT');
    const h = await checkHistory([client], [job.id], { ledger, lines, timeoutMs: 60_000 });
    recordFigures('zombie agent (SIGSTOP past its TTL, SIGCONT)', h, requeueMs);
    expect(h.violations).toEqual([]);
    expect(h.lost).toBe(0);
  });

  it('host loss (agent and its jobs frozen) with default settings: re-queued, measured', { timeout: 120_000 }, async () => {
    const server = await startServer({ args: ['--heartbeat-timeout', '4s'] }); // the default (test servers are given 2 s)
    const client = track(new TestClient(server.address, adminToken(server.dataDir)));
    const lostHost = await startAgent(server.address, { name: 'lost-host', slots: 1 });
    await client.waitAgents(1);
    const ledger = await ledgerFile();
    // Long enough to still be running once the spare agent is up, however slowly a loaded machine starts it.
    const lines = 400;
    // Only the first attempt, on the host about to be lost, paces its lines; the re-run on the spare prints them at once.
    const job = await client.submit({ script: ledgerScript(ledger, lines, 0.05, { slowFirstAttemptOnly: true }), maxAttempts: 3 });
    const running = await client.waitFor(job.id, (j) => j.state === JobState.JOB_STATE_RUNNING);
    expect(running.attempts[0]?.agent).toBe('lost-host');
    await startAgent(server.address, { name: 'spare', slots: 1 });
    await client.waitAgents(2);
    expect((await client.get(job.id)).state, 'the job must still run on the host about to be lost').toBe(JobState.JOB_STATE_RUNNING);
    // The whole host goes silent: the agent and every process of its jobs (no FIN, no RST).
    const frozen = hostProcesses(lostHost.proc.pid!);
    const stoppedAt = Date.now();
    for (const pid of frozen) signal(pid, 'SIGSTOP');
    const requeued = await client.waitFor(job.id, (j) => j.attempts.length >= 2, 60_000);
    const requeueMs = Date.parse(requeued.attempts[1]!.assignedAt ?? '') - stoppedAt;
    for (const pid of frozen) signal(pid, 'SIGKILL');
    const h = await checkHistory([client], [job.id], { ledger, lines, timeoutMs: 60_000 });
    recordFigures('host loss (silent), default heartbeat timeout', h, requeueMs);
    expect(h.violations).toEqual([]);
    // The figure is the point (npm run chaos prints it: ~9.4 s here); this bound only catches a return to the old 23 s.
    expect(requeueMs, 'a silent host re-queued well under the old 23 s').toBeLessThan(15_000);
  });

  long(
    `trivial jobs under batch load: none lost (${TRIVIAL_JOBS} jobs, three agents of 16 slots)${LONG_REASON}`,
    { timeout: 3_600_000 },
    () => trivialJobsUnderLoad(TRIVIAL_JOBS, 3),
  );

  long(`a silent netsplit of 60 s between an agent and the control plane${LONG_REASON}`, { timeout: 300_000 }, async (ctx) => {
    const net = await splitNet();
    if (!net) return ctx.skip(); // no network namespaces here (not root, or no iproute2)
    try {
      const server = await startServer({ listen: `${net.hostIp}:0` });
      const client = track(new TestClient(server.address, adminToken(server.dataDir)));
      const ledger = await ledgerFile();
      const lines = 300; // 15 s: still running when the split comes
      const cutOff = await net.agent(server.address, 'split-agent');
      await client.waitAgents(1);
      const job = await client.submit({ script: ledgerScript(ledger, lines), maxAttempts: 3 });
      await client.waitFor(job.id, (j) => j.state === JobState.JOB_STATE_RUNNING);
      await startAgent(server.address, { name: 'other-side', slots: 1 });
      await client.waitAgents(2);
      const splitAt = Date.now();
      net.split();
      const requeued = await client.waitFor(job.id, (j) => j.attempts.length >= 2, 60_000);
      const requeueMs = Date.parse(requeued.attempts[1]!.assignedAt ?? '') - splitAt;
      await sleep(Math.max(0, splitAt + 60_000 - Date.now())); // deliberate: the split lasts 60 s
      net.heal();
      // The cut-off agent comes back: its stale attempt is abandoned (killed), never reported as the job's result.
      await waitUntil(async () => (await client.agents()).agents.filter((a) => a.state === AgentState.AGENT_STATE_READY).length === 2, {
        what: 'the cut-off agent to reconnect after the heal',
        timeoutMs: 60_000,
        show: cutOff.output,
      });
      const h = await checkHistory([client], [job.id], { ledger, lines, timeoutMs: 60_000 });
      recordFigures('silent netsplit of 60 s (agent ↔ control plane)', h, requeueMs);
      expect(h.violations).toEqual([]);
      expect(h.lost).toBe(0);
    } finally {
      await net.close();
    }
  });

  long(`leader kill -9 under load: zero duplicate runs${LONG_REASON}`, { timeout: 300_000 }, async () => {
    const { peers } = await meshWithAgents('ck');
    const ledger = await ledgerFile();
    const lines = 10;
    const ids = await submitEach(peers, 120, ledger, lines);
    const leaderId = await waitLeader(peers[0]!.client);
    const leader = peers.find((p) => p.id === leaderId)!;
    const killedAt = Date.now();
    await leader.kill9();
    const others = peers.filter((p) => p !== leader);
    await waitLeader(others[0]!.client, leaderId);
    const h = await checkHistory(
      others.map((p) => p.client),
      ids,
      { ledger, lines, timeoutMs: 120_000 },
    );
    recordFigures('leader kill -9 under load', h, Date.now() - killedAt);
    expect(h.violations).toEqual([]);
    expect(h.duplicates).toBe(0);
  });

  long(`a peer↔etcd outage of 30 s under load: no peer exits, no mass re-queue${LONG_REASON}`, { timeout: 300_000 }, () =>
    etcdOutage('co', 30),
  );

  long(`a peer↔etcd outage of 60 s under load: no peer exits, no mass re-queue${LONG_REASON}`, { timeout: 300_000 }, () =>
    etcdOutage('cp', 60),
  );

  long(`etcd restarts under load (twice): nothing lost, no duplicates${LONG_REASON}`, { timeout: 300_000 }, async () => {
    const { peers, etcd } = await meshWithAgents('ce');
    const ledger = await ledgerFile();
    const lines = 20; // 1 s each
    const work = trickle(peers, ledger, lines, Date.now() + 20_000);
    for (let i = 0; i < 2; i++) {
      await sleep(6_000); // deliberate: jobs are queued, running and ending when etcd goes
      await etcd.restart();
    }
    const ids = await work;
    const h = await checkHistory(
      peers.map((p) => p.client),
      ids,
      { ledger, lines, timeoutMs: 120_000 },
    );
    recordFigures('etcd restart under load (twice)', h);
    expect(h.violations).toEqual([]);
    expect(h.duplicates).toBe(0);
  });

  long(
    `an event-loop stall of the leader past its lease (SIGSTOP, SIGCONT): one attempt per job, its stale writes fenced${LONG_REASON}`,
    { timeout: 300_000 },
    async () => {
      const { peers } = await meshWithAgents('cs');
      const ledger = await ledgerFile();
      const lines = 200; // 10 s each: running through the stall
      const ids = await submitEach(peers, 12, ledger, lines);
      await waitUntil(
        async () => (await Promise.all(ids.map((id) => peers[0]!.client.get(id)))).every((j) => j.state === JobState.JOB_STATE_RUNNING),
        { what: 'every job to run', timeoutMs: 30_000 },
      );
      const leaderId = await waitLeader(peers[0]!.client);
      const stalled = peers.find((p) => p.id === leaderId)!;
      const others = peers.filter((p) => p !== stalled);
      const stalledAt = Date.now();
      stalled.proc.kill('SIGSTOP');
      await waitLeader(others[0]!.client, leaderId);
      await sleep(Math.max(0, stalledAt + (PEER_TTL_SECONDS + 3) * 1000 - Date.now())); // deliberate: the stall outlasts the lease
      stalled.proc.kill('SIGCONT');
      const h = await checkHistory(
        peers.map((p) => p.client),
        ids,
        { ledger, lines, timeoutMs: 120_000 },
      );
      recordFigures('event-loop stall of the leader past its lease', h);
      expect(stalled.alive()).toBe(true);
      expect(h.violations).toEqual([]);
      expect(h.duplicates).toBe(0);
      // One attempt per job: the stalled peer's agents notice its silence by their session's keepalive (2.5 s,
      // transport/keepalive.ts) and move to another peer holding their attempts, before its lease (5 s) ends.
      expect(h.retried).toBe(0);
    },
  );

  long(
    `a watch that resumes across a compaction (the leader cut off from etcd, history compacted, healed): nothing missed or applied twice${LONG_REASON}`,
    { timeout: 300_000 },
    async () => {
      etcd ??= await startEtcd();
      const proxy = await startEtcdProxy(etcd.endpoint);
      try {
        // A lease (10 s) that outlasts the cut: the leader stays leader, and only its watches fall behind.
        const [behind] = await startPeers({ ...etcd, storeUrl: proxy.storeUrl }, 'cw', 1, 10);
        // It leads before the others start: started together, any of them may win the first election.
        // (A peer of an earlier scenario may hold the leader key until its lease ends: wait that out.)
        await waitLeader(behind!.client, '', 30_000, [behind!.id]);
        const peers = [behind!, ...(await startPeers(etcd, 'cx', 2, 10))];
        const agents = await startMeshAgents(peers, 'cw');
        await waitAgentsOn(
          peers[0]!.client,
          agents.map((a) => a.name),
        );
        expect(await waitLeader(peers[1]!.client), 'the first peer started leads').toBe(behind!.id);
        const ledger = await ledgerFile();
        const lines = 20;
        proxy.cut();
        // Written and compacted away while the leader cannot watch: it must re-read them, and then schedule each once.
        const ids = await submitEach(peers.slice(1), 40, ledger, lines);
        await compactEtcd(etcd.endpoint);
        proxy.heal();
        const h = await checkHistory(
          peers.map((p) => p.client),
          ids,
          { ledger, lines, timeoutMs: 120_000 },
        );
        recordFigures('watch resumed across a compaction (leader cut off from etcd)', h);
        expect(h.violations).toEqual([]);
        expect(h.duplicates).toBe(0);
        expect(behind!.output(), 'the leader saw its watch compacted and re-read').toMatch(/watch compacted|"compacted":true/);
      } finally {
        await proxy.close();
      }
    },
  );

  long(
    `a rolling restart of every peer under load: every agent takes work again within 60 s${LONG_REASON}`,
    { timeout: 300_000 },
    async () => {
      const { peers, agents } = await meshWithAgents('cr');
      const ledger = await ledgerFile();
      const lines = 40; // 2 s each
      const work = trickle(peers, ledger, lines, Date.now() + 15_000);
      for (const i of peers.keys()) await restartPeer(peers, i, 'SIGTERM');
      const ids = await work;
      const restartedAt = Date.now();
      // Every agent runs a job of its own again.
      const pinned = await Promise.all(agents.map((a) => peers[0]!.client.submit({ argv: ['true'], selector: `agent=${a.name}` })));
      await waitAllDone(
        peers.map((p) => p.client),
        pinned.map((j) => j.id),
        60_000,
      );
      const everyAgentMs = Date.now() - restartedAt;
      const h = await checkHistory(
        peers.map((p) => p.client),
        ids,
        { ledger, lines, timeoutMs: 120_000 },
      );
      recordFigures('rolling restart of all peers under load', h, everyAgentMs);
      expect(h.violations).toEqual([]);
      expect(everyAgentMs).toBeLessThan(60_000);
    },
  );

  long(`a randomised run: kills, pauses and restarts of agents, peers and etcd${LONG_REASON}`, { timeout: 600_000 }, async () => {
    const { peers, agents, etcd } = await meshWithAgents('cz');
    const ledger = await ledgerFile();
    const lines = 20; // 1 s each
    const until = Date.now() + RANDOM_SECONDS * 1000;
    const firstSeed = Number(process.env.RUNMESH_CHAOS_SEED ?? Date.now() % 100_000);
    let seed = firstSeed;
    const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    console.log(`chaos: randomised run of ${RANDOM_SECONDS} s, seed ${firstSeed} (RUNMESH_CHAOS_SEED repeats it)`);
    const work = trickle(peers, ledger, lines, until);
    const faults: string[] = [];
    while (Date.now() < until) {
      const pick = random();
      if (pick < 0.3) {
        const k = Math.floor(random() * agents.length);
        faults.push(`kill -9 agent ${agents[k]!.name}`);
        await restartAgent(agents, k);
      } else if (pick < 0.55) {
        const p = peers[Math.floor(random() * peers.length)]!;
        const ms = 500 + Math.floor(random() * 4000);
        faults.push(`pause peer ${p.id} ${ms} ms`);
        p.proc.kill('SIGSTOP');
        await sleep(ms); // deliberate: the pause
        p.proc.kill('SIGCONT');
      } else if (pick < 0.7) {
        faults.push('restart etcd');
        await etcd.restart();
      } else {
        const i = Math.floor(random() * peers.length);
        faults.push(`kill -9 peer ${peers[i]!.id}`);
        await restartPeer(peers, i, 'SIGKILL');
      }
      await sleep(1000 + Math.floor(random() * 3000)); // deliberate: time between faults
    }
    const ids = await work;
    console.log(`chaos: faults: ${faults.join('; ')}`);
    const h = await checkHistory(
      peers.map((p) => p.client),
      ids,
      { ledger, lines, timeoutMs: 180_000 },
    );
    recordFigures(`randomised run (${RANDOM_SECONDS} s, ${faults.length} faults, seed ${firstSeed})`, h);
    expect(h.violations).toEqual([]);
  });
});

/**
 * etcd down for `seconds` while every peer runs jobs (10 s each, so some end
 * in the outage and their results wait): no peer exits, no job is retried.
 */
async function etcdOutage(tag: string, seconds: number): Promise<void> {
  const { peers, etcd } = await meshWithAgents(tag);
  const ledger = await ledgerFile();
  const lines = 200; // 10 s each: running through the outage
  const ids = await submitEach(peers, 12, ledger, lines);
  await sleep(1_000); // deliberate: the jobs are placed and running
  etcd.kill('SIGKILL');
  await sleep(seconds * 1000); // deliberate: the outage
  await etcd.restart();
  const h = await checkHistory(
    peers.map((p) => p.client),
    ids,
    { ledger, lines, timeoutMs: 120_000 },
  );
  recordFigures(`etcd unreachable for ${seconds} s under load`, h);
  expect(peers.map((p) => p.alive())).toEqual([true, true, true]);
  expect(h.violations).toEqual([]);
  expect(h.retried).toBe(0);
}

/**
 * Trivial jobs (`true`, `date`) submitted in batches to one control plane
 * with `agents` agents of 16 slots (issue 16, fault 8): none may end, or
 * lose an attempt, as lost.
 */
async function trivialJobsUnderLoad(n: number, agents: number): Promise<void> {
  // The deployed heartbeat timeout (the test servers' 2 s is for quick re-queues, not for a loaded host).
  const server = await startServer({ args: ['--rate-token', '1000000', '--rate-tenant', '1000000', '--heartbeat-timeout', '4s'] });
  const client = track(new TestClient(server.address, adminToken(server.dataDir)));
  const started: AgentProc[] = [];
  for (let i = 0; i < agents; i++) started.push(await startAgent(server.address, { name: `busy${i}`, slots: 16 }));
  await client.waitAgents(agents);
  const load = await batchLoad([client], { n, timeoutMs: 60_000 + n * 200 });
  console.log(
    `chaos: ${load.jobs} trivial jobs on ${agents} agent(s) of 16 slots in ${load.seconds} s, ${load.lostAttempts} attempts lost`,
  );
  recordFigures(`trivial jobs under batch load (${agents} agent(s) × 16 slots)`, {
    jobs: load.jobs,
    lost: load.failed,
    retried: load.retried,
  });
  const lostLines = started.flatMap((a) =>
    a
      .output()
      .split('\n')
      .filter((l) => l.includes('attempt lost')),
  );
  expect(load.examples).toEqual([]);
  expect(load.lostAttempts).toBe(0);
  expect(lostLines).toEqual([]);
}

/** Compacts etcd's history up to its current revision. */
async function compactEtcd(endpoint: string): Promise<void> {
  const client = new Etcd3({ hosts: endpoint });
  try {
    const { header } = await client.kv.range({ key: Buffer.from('/') });
    await client.kv.compact({ revision: header.revision, physical: true });
  } finally {
    client.close();
  }
}

/** A mesh of three peers on the suite's etcd with four agents, all connected. */
async function meshWithAgents(tag: string): Promise<{ peers: MeshPeer[]; agents: MeshAgent[]; etcd: TestEtcd }> {
  etcd ??= await startEtcd();
  const peers = await startPeers(etcd, tag);
  const agents = await startMeshAgents(peers, tag);
  await waitAgentsOn(
    peers[0]!.client,
    agents.map((a) => a.name),
  );
  return { peers, agents, etcd };
}

/** Submits `n` ledger jobs round-robin over `peers`; resolves with their ids. */
async function submitEach(peers: MeshPeer[], n: number, ledger: string, lines: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++)
    ids.push((await peers[i % peers.length]!.client.submit({ script: ledgerScript(ledger, lines), maxAttempts: 3 })).id);
  return ids;
}

/** Submits ledger jobs round-robin over `peers` (as they are at each moment) every 150 ms until `until`; a refused submit is skipped. */
async function trickle(peers: MeshPeer[], ledger: string, lines: number, until: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; Date.now() < until; i++) {
    const job = await peers[i % peers.length]!.client.submit({ script: ledgerScript(ledger, lines), maxAttempts: 5 }).catch(
      () => undefined,
    );
    if (job) ids.push(job.id);
    await sleep(150); // deliberate: a steady trickle of work through the faults
  }
  return ids;
}

/** Stops peer `i` (SIGTERM, or kill -9) and starts it again on its data dir, address and flags, in place in `peers`. */
async function restartPeer(peers: MeshPeer[], i: number, how: 'SIGTERM' | 'SIGKILL'): Promise<void> {
  const p = peers[i]!;
  if (how === 'SIGKILL') await p.kill9();
  else await p.stop('SIGTERM');
  const again = await startServer({ dataDir: p.dataDir, listen: p.address, args: p.args.slice(p.args.indexOf('--store')) });
  peers[i] = Object.assign(again, {
    id: p.id,
    client: p.client,
    alive: () => again.proc.exitCode === null && again.proc.signalCode === null,
  });
}

/** Kills agent `k` with -9 and starts it again on its work dir and addresses, in place in `agents`. */
async function restartAgent(agents: MeshAgent[], k: number): Promise<void> {
  const a = agents[k]!;
  await a.kill9();
  const servers = a.args[a.args.indexOf('--server') + 1]!;
  agents[k] = Object.assign(await startAgent(servers, { name: a.name, workDir: a.workDir, slots: 4, labels: `agent=${a.name}` }), {
    home: a.home,
  });
}

/**
 * A network namespace for one agent, joined to the host by a veth pair:
 * `split()` takes the host's end down, so packets vanish without a reset
 * (a silent netsplit), and `heal()` brings it back. Undefined where
 * namespaces cannot be made (not root, no iproute2).
 */
async function splitNet(): Promise<
  | {
      hostIp: string;
      agent(server: string, name: string): Promise<AgentProc>;
      split(): void;
      heal(): void;
      close(): Promise<void>;
    }
  | undefined
> {
  const ns = `rmchaos${process.pid}`;
  const [hostEnd, nsEnd] = [`rmh${process.pid % 100000}`, `rmn${process.pid % 100000}`];
  const ip = (...args: string[]): void => void execFileSync('ip', args, { stdio: 'ignore' });
  try {
    ip('netns', 'add', ns);
  } catch {
    return undefined;
  }
  ip('link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', nsEnd);
  ip('link', 'set', nsEnd, 'netns', ns);
  ip('addr', 'add', '10.77.0.1/24', 'dev', hostEnd);
  ip('link', 'set', hostEnd, 'up');
  ip('netns', 'exec', ns, 'ip', 'addr', 'add', '10.77.0.2/24', 'dev', nsEnd);
  ip('netns', 'exec', ns, 'ip', 'link', 'set', nsEnd, 'up');
  ip('netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up');
  const agents: AgentProc[] = [];
  return {
    hostIp: '10.77.0.1',
    agent: async (server, name) => {
      const agent = await startAgent(server, { name, slots: 1, netns: ns });
      agents.push(agent);
      return agent;
    },
    split: () => ip('link', 'set', hostEnd, 'down'),
    heal: () => ip('link', 'set', hostEnd, 'up'),
    async close() {
      // The agent and every process of its jobs: nothing may outlive the namespace.
      for (const a of agents) for (const pid of hostProcesses(a.proc.pid!)) signal(pid, 'SIGKILL');
      try {
        ip('link', 'del', hostEnd);
      } catch {
        // gone with the namespace
      }
      ip('netns', 'del', ns);
    },
  };
}

/** Signals `pid` if it still exists. */
function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** `pid` and every process below it (the agent, its supervisors and their jobs), read from /proc. */
function hostProcesses(pid: number): number[] {
  const parents = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    parents.set(ppid, [...(parents.get(ppid) ?? []), Number(entry)]);
  }
  const out = [pid];
  for (let i = 0; i < out.length; i++) out.push(...(parents.get(out[i]!) ?? []));
  return out;
}
