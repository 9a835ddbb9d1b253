/**
 * The control plane as a mesh: three peers sharing one real etcd, four agents
 * spread over them, and the failures a mesh exists to survive — a leader
 * killed under load, a peer killed while its agents run jobs, etcd restarted
 * under load, and a leader frozen past its lease that must step aside
 * without writing stale state. Every job must end exactly once.
 */
import { status as grpcStatus } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { JobState, type Job } from '../proto/gen/runmesh/v1/job.js';
import type { TestClient } from './support/client.js';
import { startEtcd, type TestEtcd } from './support/etcd.js';
import {
  describeJob,
  endsAtTerminal,
  entries,
  inBatches,
  overlappingAttempts,
  PEER_TTL_SECONDS,
  DEFAULT_PEER_TTL_SECONDS,
  startMeshAgents,
  startPeers,
  waitAgentsOn,
  waitAllDone,
  waitLeader,
  type MeshPeer,
} from './support/mesh.js';
import { jobPids } from './support/proc.js';
import { removeDir, stopAll, TOKEN } from './support/processes.js';
import { simAgent, type SimAgent } from './support/sim-agent.js';
import { sleep, waitUntil } from './support/wait.js';

// Real agents start a supervisor process per attempt (~0.1-0.2 s of CPU): 500 jobs take 75-100 s on a
// 2-core runner that is also running another suite, so the bounds leave room for twice that.
const TEST_TIMEOUT_MS = 240_000;
const SUCCEEDED = JobState.JOB_STATE_SUCCEEDED;
const echoId = { argv: ['sh', '-c', 'echo $RUNMESH_JOB_ID'] };

let etcd: TestEtcd;
let clients: TestClient[] = [];
let running: MeshPeer[] = [];
/** Data and work directories of this test's processes, removed once they are dead. */
let dirs: string[] = [];

beforeAll(async () => {
  etcd = await startEtcd();
});

afterAll(async () => {
  await etcd?.stop();
});

/** Stopped after a test's processes (an etcd of the test's own). */
let afterEachStops: Array<() => Promise<void>> = [];

afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail') for (const p of running) console.error(peerReport(p));
  for (const c of clients) c.close();
  clients = [];
  running = [];
  await stopAll();
  await Promise.all(dirs.map(removeDir));
  dirs = [];
  await Promise.all(afterEachStops.map((stop) => stop()));
  afterEachStops = [];
});

/** A failed test's evidence from one peer: how it ended and its last warnings and errors, one line each. */
function peerReport(p: MeshPeer): string {
  const lines = p
    .output()
    .split('\n')
    .flatMap((line) => {
      if (!line.startsWith('{')) return line.trim() ? [line] : [];
      const rec = parseRecord(line);
      if (!rec) return [line.slice(0, 300)];
      if ((rec.level ?? 0) < 40) return [];
      return [
        `${new Date(rec.time ?? 0).toISOString()} ${rec.level} ${rec.msg ?? ''}${rec.job_id ? ` job=${rec.job_id}` : ''}${rec.err ? `: ${rec.err.message ?? ''}` : ''}`,
      ];
    });
  return `--- peer ${p.id} exit=${p.proc.exitCode} signal=${p.proc.signalCode}\n${lines.slice(-30).join('\n')}`;
}

interface LogRecord {
  level?: number;
  time?: number;
  msg?: string;
  job_id?: string;
  err?: { message?: string };
}

function parseRecord(line: string): LogRecord | undefined {
  try {
    return JSON.parse(line) as LogRecord;
  } catch {
    return undefined; // cut short when the output buffer was trimmed
  }
}

/** Three fresh peers (ids `<tag>p0..2`) on `on` (default the shared etcd) and the current leader among them. */
async function mesh(
  tag: string,
  ttlSeconds = PEER_TTL_SECONDS,
  on: TestEtcd = etcd,
): Promise<{ peers: MeshPeer[]; leader: MeshPeer; others: MeshPeer[] }> {
  const peers = await startPeers(on, tag, 3, ttlSeconds);
  clients.push(...peers.map((p) => p.client));
  running = peers;
  dirs.push(...peers.map((p) => p.dataDir));
  const leaderId = await waitLeader(
    peers[0]!.client,
    '',
    20_000,
    peers.map((p) => p.id),
  );
  const leader = peers.find((p) => p.id === leaderId);
  if (!leader) throw new Error(`leader ${leaderId} is not one of ${peers.map((p) => p.id).join(',')}`);
  return { peers, leader, others: peers.filter((p) => p !== leader) };
}

/** Jobs in `done` that break `pred`, described, so a failure names them. */
function breaking(done: Map<string, Job>, pred: (j: Job) => boolean): string[] {
  return [...done.values()]
    .filter((j) => !pred(j))
    .map((j) => describeJob(j) ?? j.id)
    .slice(0, 10);
}

/** Every job SUCCEEDED, once: one SUCCEEDED entry, nothing written after it, no two attempts at once. */
function expectSucceededOnce(done: Map<string, Job>): void {
  expect(breaking(done, (j) => j.state === SUCCEEDED)).toEqual([]);
  expect(breaking(done, (j) => entries(j, SUCCEEDED) === 1 && endsAtTerminal(j))).toEqual([]);
  expect(breaking(done, (j) => overlappingAttempts(j).length === 0)).toEqual([]);
  // Only the last attempt may have succeeded: an earlier one was lost, not completed twice.
  expect(breaking(done, (j) => j.attempts.slice(0, -1).every((a) => a.state !== SUCCEEDED))).toEqual([]);
}

/** Submits `n` jobs round-robin over `to`, `batch` at a time; `onBatch` runs after each batch. */
async function submitSpread(
  to: MeshPeer[],
  n: number,
  spec: Parameters<TestClient['submit']>[0],
  batch: number,
  onBatch?: (submitted: number) => void,
): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += batch) {
    const size = Math.min(batch, n - i);
    const jobs = await Promise.all(Array.from({ length: size }, (_, j) => to[(i + j) % to.length]!.client.submit(spec)));
    ids.push(...jobs.map((j) => j.id));
    onBatch?.(ids.length);
  }
  return ids;
}

/** Submits through `peer`, retrying UNAVAILABLE (the store is briefly away) until `withinMs`; any other error fails. */
async function submitRetrying(peer: MeshPeer, spec: Parameters<TestClient['submit']>[0], withinMs: number): Promise<string> {
  const until = Date.now() + withinMs;
  for (;;) {
    try {
      return (await peer.client.submit(spec)).id;
    } catch (err) {
      if ((err as { code?: number }).code !== grpcStatus.UNAVAILABLE || Date.now() > until) throw err;
      await sleep(200);
    }
  }
}

/** `startMeshAgents`, with the agents' work directories marked for removal. */
async function agentsOn(homes: MeshPeer[], tag: string): Promise<void> {
  const agents = await startMeshAgents(homes, tag);
  dirs.push(...agents.map((a) => a.workDir));
}

const agentNames = (tag: string, ks: number[]): string[] => ks.map((k) => `${tag}a${k}`);

describe('control-plane mesh over etcd', () => {
  it('runs 500 jobs submitted round-robin to three peers, each exactly once, over TLS to etcd', { timeout: TEST_TIMEOUT_MS }, async () => {
    // As production runs etcd: TLS, client certificates, and a runmesh user whose role holds only /runmesh/.
    const secure = await startEtcd({ tls: true, auth: true });
    afterEachStops.push(() => secure.stop());
    // No failover here: the default lease, so a starved keepalive on a loaded runner is not mistaken for a dead peer.
    const { peers } = await mesh('m1', DEFAULT_PEER_TTL_SECONDS, secure);
    await agentsOn(peers, 'm1');
    await waitAgentsOn(peers[0]!.client, agentNames('m1', [0, 1, 2, 3]));
    const started = Date.now();
    const ids = await submitSpread(peers, 500, echoId, 50);
    const done = await waitAllDone(
      peers.map((p) => p.client),
      ids,
      200_000,
    );
    console.log(`mesh: 500 jobs over 3 peers done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    expectSucceededOnce(done);
    expect(breaking(done, (j) => j.attempts.length === 1)).toEqual([]);
    // Logs are read through a peer other than the one the job was submitted to.
    const wrong = await inBatches(ids, 25, async (id, i) => {
      const { stdout } = await peers[(i + 1) % peers.length]!.client.logs(id);
      return stdout === `${id}\n` ? undefined : `${id}: ${JSON.stringify(stdout)}`;
    });
    expect(wrong.filter((w) => w !== undefined).slice(0, 10)).toEqual([]);
  });

  it('elects a new leader within 5 s of a kill -9 under load and loses no job', { timeout: TEST_TIMEOUT_MS }, async () => {
    const { leader, others } = await mesh('m2');
    // The leader is home to agents 0 and 3, so the kill also moves two agent streams.
    await agentsOn([leader, ...others], 'm2');
    const held = await waitAgentsOn(others[0]!.client, agentNames('m2', [0, 1, 2, 3]));
    const onKilled = new Set([...held].filter(([, peer]) => peer === leader.id).map(([name]) => name));
    let killedAt = 0;
    const failover = (async () => {
      await waitUntil(() => killedAt > 0, { what: 'the kill', timeoutMs: 60_000 });
      const next = await waitLeader(others[0]!.client, leader.id, 30_000);
      return { next, seconds: (Date.now() - killedAt) / 1000 };
    })();
    failover.catch(() => undefined); // awaited below; not unhandled if submitting fails first
    const ids = await submitSpread(others, 200, { script: 'sleep 0.2', maxAttempts: 3 }, 20, (submitted) => {
      if (submitted >= 60 && killedAt === 0) {
        killedAt = Date.now();
        void leader.kill9();
      }
    });
    const { next, seconds } = await failover;
    console.log(`mesh: leader ${leader.id} killed -9, ${next} leads after ${seconds.toFixed(2)} s (peer TTL ${PEER_TTL_SECONDS} s)`);
    expect(seconds).toBeLessThanOrEqual(5);
    const done = await waitAllDone(
      others.map((p) => p.client),
      ids,
      90_000,
    );
    expectSucceededOnce(done);
    const retried = [...done.values()].filter((j) => j.attempts.length > 1);
    console.log(
      `mesh: ${retried.length} of ${ids.length} jobs needed a second attempt (agents on the killed peer: ${[...onKilled].join(',')})`,
    );
    // Only an attempt on an agent whose stream died with the leader may be lost and retried.
    expect(breaking(done, (j) => j.attempts.length === 1 || onKilled.has(j.attempts[0]!.agent))).toEqual([]);
  });

  it('keeps two running jobs through a kill -9 of the peer holding both agents', { timeout: TEST_TIMEOUT_MS }, async () => {
    const { leader, others } = await mesh('m3');
    const [victim, survivor] = [others[0]!, others[1]!];
    // Agents 0 and 3 are homed on a peer that is not the leader: this is about streams, not elections.
    await agentsOn([victim, survivor, leader], 'm3');
    const pinned = agentNames('m3', [0, 3]);
    const held = await waitAgentsOn(survivor.client, pinned);
    expect(pinned.map((n) => held.get(n))).toEqual([victim.id, victim.id]);
    const lines = 60;
    // At least 6 s of work: a loaded runner can take a few seconds to record RUNNING, and the jobs must outlive the kill.
    const script = `i=1; while [ $i -le ${lines} ]; do echo "line $i"; i=$((i+1)); sleep 0.1; done`;
    const jobs = await Promise.all(pinned.map((name) => survivor.client.submit({ script, selector: `agent=${name}`, maxAttempts: 1 })));
    for (const j of jobs) await survivor.client.waitFor(j.id, (x) => x.state === JobState.JOB_STATE_RUNNING, 20_000);
    // Killed mid-stream: each job has sent a tenth of its output through the victim.
    for (const j of jobs)
      await waitUntil(async () => (await survivor.client.logs(j.id)).stdout.includes('line 6\n'), {
        what: `${j.id} to stream 6 lines`,
        timeoutMs: 20_000,
      });
    for (const j of jobs) expect(jobPids(j.id).length).toBeGreaterThan(0);
    await victim.kill9();
    const moved = await waitAgentsOn(survivor.client, pinned, victim.id, 30_000);
    console.log(`mesh: after kill -9 of ${victim.id}, agents moved to ${pinned.map((n) => `${n}→${moved.get(n)}`).join(', ')}`);
    const want = Array.from({ length: lines }, (_, i) => `line ${i + 1}\n`).join('');
    for (const j of jobs) {
      const done = await survivor.client.waitDone(j.id, 40_000);
      expect(done.state, describeJob(done)).toBe(SUCCEEDED);
      expect(done.attempts, describeJob(done)).toHaveLength(1);
      expect(entries(done, SUCCEEDED)).toBe(1);
      expect((await survivor.client.logs(j.id)).stdout).toBe(want);
      expect((await leader.client.logs(j.id)).stdout).toBe(want);
    }
  });

  it(
    'keeps a finished log readable from the other peers after a kill -9 of the peer that accepted it',
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const { leader, others } = await mesh('m6');
      const [home, third] = [others[0]!, others[1]!];
      await agentsOn([home, third, leader], 'm6');
      const [name] = agentNames('m6', [0]);
      expect((await waitAgentsOn(leader.client, [name!])).get(name!)).toBe(home.id);
      const lines = 300;
      const script = `i=1; while [ $i -le ${lines} ]; do echo "line $i"; i=$((i+1)); done; echo "to stderr" >&2`;
      const job = await leader.client.submit({ script, selector: `agent=${name}`, maxAttempts: 1 });
      const done = await leader.client.waitDone(job.id, 30_000);
      expect(done.state, describeJob(done)).toBe(SUCCEEDED);
      const want = Array.from({ length: lines }, (_, i) => `line ${i + 1}\n`).join('');
      expect((await home.client.logs(job.id)).stdout).toBe(want);
      // The agent dropped its spool when its result was acknowledged: the copy on another peer is all there is.
      await home.kill9();
      for (const p of [leader, third]) {
        const read = await p.client.logs(job.id);
        expect(read.stdout, `stdout read from ${p.id}`).toBe(want);
        expect(read.stderr, `stderr read from ${p.id}`).toBe('to stderr\n');
      }
    },
  );

  it(
    "follows a running job's log from the other peers through a kill -9 of the peer holding its agent",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const { leader, others } = await mesh('m8');
      const [home, third] = [others[0]!, others[1]!];
      await agentsOn([home, third, leader], 'm8');
      const [name] = agentNames('m8', [0]);
      expect((await waitAgentsOn(leader.client, [name!])).get(name!)).toBe(home.id);
      const lines = 60;
      const script = `i=1; while [ $i -le ${lines} ]; do echo "line $i"; i=$((i+1)); sleep 0.1; done`;
      const job = await leader.client.submit({ script, selector: `agent=${name}`, maxAttempts: 1 });
      await leader.client.waitFor(job.id, (j) => j.state === JobState.JOB_STATE_RUNNING, 20_000);
      // Both followers read from the agent's peer until it dies, then from wherever the agent reconnects.
      const follows = [leader, third].map((p) => p.client.logs(job.id, { follow: true }));
      // Killed mid-job: a quarter of the output has been read from the agent's peer.
      await waitUntil(async () => (await leader.client.logs(job.id)).stdout.includes('line 15\n'), {
        what: 'the job to stream 15 lines',
        timeoutMs: 20_000,
      });
      await home.kill9();
      const done = await leader.client.waitDone(job.id, 60_000);
      expect(done.state, describeJob(done)).toBe(SUCCEEDED);
      const want = Array.from({ length: lines }, (_, i) => `line ${i + 1}\n`).join('');
      for (const [i, read] of (await Promise.all(follows)).entries()) {
        const from = [leader, third][i]!.id;
        expect(read.stdout, `followed from ${from}`).toBe(want);
        expect(
          read.records.map((r) => r.seq),
          `followed from ${from}`,
        ).toEqual(read.records.map((_, k) => k));
      }
    },
  );

  it(
    "routes by the load an agent reports to another peer: the leader's router and ListAgents see it",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const peers = await startPeers(etcd, 'm7', 2);
      clients.push(...peers.map((p) => p.client));
      running = peers;
      dirs.push(...peers.map((p) => p.dataDir));
      const leaderId = await waitLeader(
        peers[0]!.client,
        '',
        20_000,
        peers.map((p) => p.id),
      );
      const sims: SimAgent[] = [];
      try {
        // Same capacity; the busy host is held by the other peer, the idle one by the leader.
        const lead = peers.find((p) => p.id === leaderId)!;
        const other = peers.find((p) => p.id !== leaderId)!;
        const hold = { complete: () => false, heartbeatMs: 200, token: TOKEN, slots: 4 };
        sims.push(
          simAgent(other.address, { ...hold, name: 'm7-busy', load: 0.9 }),
          simAgent(lead.address, { ...hold, name: 'm7-idle', load: 0 }),
        );
        await Promise.all(sims.map((s) => s.welcomed));
        await waitUntil(async () => (await lead.client.agents()).agents.find((a) => a.name === 'm7-busy')?.load === 0.9, {
          what: "the leader to see m7-busy's load",
          timeoutMs: 20_000,
        });
        const jobs = [];
        for (let i = 0; i < 4; i++) jobs.push(await lead.client.submit({ argv: ['true'], selector: 'sim=true' }));
        const placed = await Promise.all(jobs.map((j) => lead.client.waitFor(j.id, (x) => x.attempts.length > 0, 20_000)));
        // Spread weighs free slots plus host load: the idle host wins every job until it is fuller than the busy one.
        expect(placed.map((j) => j.attempts[0]!.agent)).toEqual(['m7-idle', 'm7-idle', 'm7-idle', 'm7-idle']);
      } finally {
        sims.forEach((s) => s.close());
      }
    },
  );

  it('rides out an etcd restart under load without restarting any peer', { timeout: TEST_TIMEOUT_MS }, async () => {
    // The default lease: an etcd restart takes 0.3 s on an idle machine but up to ~3 s on a loaded runner.
    const ttl = DEFAULT_PEER_TTL_SECONDS;
    const { peers } = await mesh('m4', ttl);
    await agentsOn(peers, 'm4');
    await waitAgentsOn(peers[0]!.client, agentNames('m4', [0, 1, 2, 3]));
    const spec = { script: 'sleep 0.2; echo $RUNMESH_JOB_ID', maxAttempts: 3 };
    const flowing = await submitSpread(peers, 100, spec, 50);
    // Under load: the restart comes while jobs run.
    await waitUntil(async () => ((await peers[0]!.client.status()).jobsByState.running ?? 0) > 0, {
      what: 'jobs running',
      timeoutMs: 20_000,
    });
    const t0 = Date.now();
    await etcd.restart();
    const restartSeconds = (Date.now() - t0) / 1000;
    console.log(`mesh: etcd restarted in ${restartSeconds.toFixed(2)} s under load (peer TTL ${ttl} s)`);
    expect(restartSeconds, 'etcd restart took longer than a peer lease: nothing to ride out').toBeLessThan(ttl - 1);
    // Submitted at once, retrying only what a client may retry (UNAVAILABLE); checked after the flowing jobs.
    const later = Promise.allSettled(Array.from({ length: 20 }, (_, i) => submitRetrying(peers[i % peers.length]!, spec, 20_000)));
    // A blip under the lease must not cost any peer its lease: same processes a lease and a half later.
    await sleep(ttl * 1500); // deliberate: a lease and a half in which no peer may exit
    const exited = peers
      .filter((p) => !p.alive())
      .map((p) => `${p.id}: ${p.output().match(/lost this peer's lease[^\n]*/)?.[0] ?? `exit ${p.proc.exitCode}`}`);
    expect(exited, 'peers that exited after an etcd restart shorter than their lease').toEqual([]);
    const done = await waitAllDone(
      peers.map((p) => p.client),
      flowing,
      90_000,
    );
    expectSucceededOnce(done);
    console.log(
      `mesh: ${[...done.values()].filter((j) => j.attempts.length > 1).length} of ${flowing.length} jobs retried across the etcd restart`,
    );
    const submitted = await later;
    expect(submitted.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : [])).slice(0, 3)).toEqual([]);
    const ids = submitted.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    expectSucceededOnce(
      await waitAllDone(
        peers.map((p) => p.client),
        ids,
        60_000,
      ),
    );
    // Still the same processes once the work is done, and one of them leads.
    expect(peers.map((p) => [p.id, p.proc.exitCode, p.proc.signalCode])).toEqual(peers.map((p) => [p.id, null, null]));
    for (const p of peers) expect(await waitLeader(p.client, '', 10_000)).toMatch(/^m4p\d$/);
  });

  it('retires a leader frozen past its lease without it writing job state', { timeout: TEST_TIMEOUT_MS }, async () => {
    const { leader, others } = await mesh('m5');
    await agentsOn([leader, ...others], 'm5');
    await waitAgentsOn(others[0]!.client, agentNames('m5', [0, 1, 2, 3]));
    const spec = { script: 'sleep 0.2; echo $RUNMESH_JOB_ID', maxAttempts: 3 };
    // Work in flight as the leader freezes, so it holds placements and results when it wakes.
    const before = await submitSpread(others, 30, spec, 30);
    const frozenAt = Date.now();
    leader.proc.kill('SIGSTOP');
    const meanwhile = await submitSpread(others, 60, spec, 20);
    const next = await waitLeader(others[0]!.client, leader.id, 20_000);
    console.log(`mesh: leader ${leader.id} frozen, ${next} leads after ${((Date.now() - frozenAt) / 1000).toFixed(2)} s`);
    await sleep(Math.max(0, frozenAt + 3 * PEER_TTL_SECONDS * 1000 - Date.now())); // deliberate: frozen well past its lease
    leader.proc.kill('SIGCONT');
    // It does not exit: it finds its lease lost, steps down and rejoins the mesh with a new one, as a follower.
    await waitUntil(() => leader.output().includes('rejoined the mesh'), {
      what: 'the stale leader to rejoin',
      timeoutMs: 20_000,
      show: () => leader.output().slice(-3000),
    });
    expect(leader.output()).toContain('peer lease lost');
    expect(leader.alive()).toBe(true);
    const all = [...before, ...meanwhile];
    const done = await waitAllDone(
      others.map((p) => p.client),
      all,
      60_000,
    );
    expectSucceededOnce(done);
    console.log(
      `mesh: ${[...done.values()].filter((j) => j.attempts.length > 1).length} of ${all.length} jobs needed a second attempt around the frozen leader`,
    );
    // Read again once the stale peer is long gone: nothing changed behind the survivors' backs.
    await sleep(1000); // deliberate: a while in which nothing may change
    const again = await waitAllDone(
      others.map((p) => p.client),
      all,
      30_000,
    );
    expect(breaking(again, (j) => j.timeline.length === done.get(j.id)?.timeline.length)).toEqual([]);
  });
});
