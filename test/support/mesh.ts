/**
 * A control-plane mesh for cross-process tests: several `runmesh server`
 * peers sharing one real etcd, agents homed on chosen peers with the others
 * as fallbacks, and the checks every failure test repeats (wait for many
 * jobs, find the leader, attempts that never overlap).
 */
import { AgentState } from '../../proto/gen/runmesh/v1/cluster.js';
import { JobState, type Job } from '../../proto/gen/runmesh/v1/job.js';
import type { EtcdFlags } from '../../control-plane/store/index.js';
import { adminToken, TERMINAL, TestClient } from './client.js';
import type { TestEtcd } from './etcd.js';
import { startAgent, startServer, type AgentProc, type ServerProc } from './processes.js';
import { sleep, waitUntil } from './wait.js';

/**
 * Lease of every test peer: short, so failovers fit in a test, but not so
 * short that a 2-core CI machine running two suites at once (a dozen
 * processes) starves a keepalive past it: at 2 s, one in a few full runs lost
 * a healthy peer's lease while three peers and four agents ran 500 jobs.
 */
export const PEER_TTL_SECONDS = 3;

/** `runmesh server`'s default lease, for tests that need no quick failover (riding out load and store blips as deployed). */
export const DEFAULT_PEER_TTL_SECONDS = 5;

export interface MeshPeer extends ServerProc {
  readonly id: string;
  readonly client: TestClient;
  /** True while the process has neither exited nor been killed. */
  alive(): boolean;
}

/** The admin token of each etcd's cluster: written by the first peer ever started on it, used by every client. */
const clusterTokens = new Map<string, string>();

/** Starts `n` peers on `etcd` (through its `--etcd-*` flags when it is secured), named `<tag>p0`…, one after another. */
export async function startPeers(etcd: TestEtcd, tag: string, n = 3, ttlSeconds = PEER_TTL_SECONDS): Promise<MeshPeer[]> {
  const peers: MeshPeer[] = [];
  for (let i = 0; i < n; i++) {
    const id = `${tag}p${i}`;
    const server = await startServer({
      args: ['--store', etcd.storeUrl, ...etcdFlagArgs(etcd.flags), '--peer-id', id, '--peer-ttl', `${ttlSeconds}s`],
    });
    if (!clusterTokens.has(etcd.endpoint)) clusterTokens.set(etcd.endpoint, adminToken(server.dataDir));
    const client = new TestClient(server.address, clusterTokens.get(etcd.endpoint));
    const alive = (): boolean => server.proc.exitCode === null && server.proc.signalCode === null;
    peers.push(Object.assign(server, { id, client, alive }));
  }
  return peers;
}

/** `runmesh server`'s `--etcd-*` arguments for the flags that are set. */
export function etcdFlagArgs(f: EtcdFlags): string[] {
  const names: Array<[keyof EtcdFlags, string]> = [
    ['ca', '--etcd-ca'],
    ['cert', '--etcd-cert'],
    ['key', '--etcd-key'],
    ['serverName', '--etcd-server-name'],
    ['user', '--etcd-user'],
    ['passwordFile', '--etcd-password-file'],
  ];
  return names.flatMap(([field, flag]) => (f[field] ? [flag, f[field]] : []));
}

export interface MeshAgent extends AgentProc {
  /** The peer listed first in its `--server`. */
  readonly home: MeshPeer;
}

/**
 * Starts `n` agents named `<tag>a0`…: agent k is homed on `homes[k % homes.length]`
 * and lists every other peer after it. Each carries the label `agent=<name>`
 * so that a job can be pinned to it with a selector.
 */
export async function startMeshAgents(homes: MeshPeer[], tag: string, n = 4, slots = 4): Promise<MeshAgent[]> {
  const agents: MeshAgent[] = [];
  for (let k = 0; k < n; k++) {
    const home = homes[k % homes.length]!;
    const servers = [home, ...homes.filter((p) => p !== home)].map((p) => p.address).join(',');
    const name = `${tag}a${k}`;
    const agent = await startAgent(servers, { name, slots, labels: `agent=${name}` });
    agents.push(Object.assign(agent, { home }));
  }
  return agents;
}

/** Polls Status on `client` until a leader other than `not` is named; returns its id. */
export async function waitLeader(client: TestClient, not = '', timeoutMs = 20_000, among?: readonly string[]): Promise<string> {
  let last = '';
  return waitUntil(
    async () => {
      last = (await client.status().catch(() => undefined))?.leader ?? '';
      // A peer killed by the previous test holds the leader key until its lease expires: wait it out.
      return last && last !== not && (!among || among.includes(last)) && last;
    },
    { what: `a leader other than "${not}"${among ? ` among ${among.join(',')}` : ''}`, timeoutMs, show: () => `last leader: "${last}"` },
  );
}

/** Polls until every agent named in `names` is READY on a peer other than `not`; returns agent → peer id. */
export async function waitAgentsOn(client: TestClient, names: string[], not = '', timeoutMs = 20_000): Promise<Map<string, string>> {
  let last = '';
  return waitUntil(
    async () => {
      const res = await client.agents().catch(() => undefined);
      const ready = (res?.agents ?? []).filter(
        (a) => names.includes(a.name) && a.state === AgentState.AGENT_STATE_READY && a.peer && a.peer !== not,
      );
      last = JSON.stringify(res?.agents.map((a) => ({ name: a.name, state: a.state, peer: a.peer })));
      return ready.length === names.length && new Map(ready.map((a) => [a.name, a.peer]));
    },
    { what: `agents ${names.join(',')} ready off "${not}"`, timeoutMs, intervalMs: 50, show: () => `last: ${last}` },
  );
}

/** Runs `fn` over `items`, `size` at a time (Promise.all per batch), keeping order. */
export async function inBatches<T, R>(items: readonly T[], size: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) {
    out.push(...(await Promise.all(items.slice(i, i + size).map((item, j) => fn(item, i + j)))));
  }
  return out;
}

/** Gets a job from the first of `clients` (rotated by `turn`) that answers. */
async function getFromAny(clients: TestClient[], id: string, turn: number): Promise<Job | undefined> {
  for (let k = 0; k < clients.length; k++) {
    const job = await clients[(turn + k) % clients.length]!.get(id).catch(() => undefined);
    if (job) return job;
  }
  return undefined;
}

const SILENCE_MS = 15_000;

/**
 * Polls until every job in `ids` is terminal, reading through `clients` in
 * turn (so reads cross peers); fails naming the jobs still pending.
 */
export async function waitAllDone(clients: TestClient[], ids: string[], timeoutMs: number): Promise<Map<string, Job>> {
  const done = new Map<string, Job>();
  const last = new Map<string, Job>();
  const until = Date.now() + timeoutMs;
  let answered = Date.now();
  let pending = ids;
  for (let round = 0; pending.length > 0 && Date.now() < until; round++) {
    await inBatches(pending, 50, async (id, i) => {
      const job = await getFromAny(clients, id, round + i);
      if (job) answered = Date.now();
      if (job) last.set(id, job);
      if (job && TERMINAL.has(job.state)) done.set(id, job);
    });
    pending = pending.filter((id) => !done.has(id));
    // Every peer gone is a verdict already; do not spend the whole timeout on it.
    if (Date.now() - answered > SILENCE_MS)
      throw new Error(`no peer answered for ${SILENCE_MS} ms with ${pending.length} of ${ids.length} jobs pending`);
    if (pending.length > 0) await sleep(250);
  }
  if (pending.length > 0) {
    const sample = pending.slice(0, 5).map((id) => describeJob(last.get(id)) ?? id);
    throw new Error(`${pending.length} of ${ids.length} jobs not terminal after ${timeoutMs} ms; e.g. ${sample.join('\n')}`);
  }
  return done;
}

/** A one-line account of a job for failure messages. */
export function describeJob(job: Job | undefined): string | undefined {
  if (!job) return undefined;
  return JSON.stringify({
    id: job.id,
    state: JobState[job.state],
    waiting: job.waitingReason || undefined,
    attempts: job.attempts.map((a) => ({
      n: a.number,
      agent: a.agent,
      state: JobState[a.state],
      failure: a.failure,
      msg: a.message || undefined,
      started: a.startedAt,
      finished: a.finishedAt,
    })),
    timeline: job.timeline.map((t) => `${t.attempt}:${JobState[t.state]}@${t.at}${t.reason ? `(${t.reason})` : ''}`),
  });
}

/** Pairs of attempts that ran at once: an earlier one not finished before a later one started. */
export function overlappingAttempts(job: Job): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  const sorted = [...job.attempts].sort((a, b) => a.number - b.number);
  for (let i = 1; i < sorted.length; i++) {
    const before = sorted[i - 1]!;
    const after = sorted[i]!;
    const end = before.finishedAt ? Date.parse(before.finishedAt) : Infinity;
    const start = after.startedAt ? Date.parse(after.startedAt) : after.assignedAt ? Date.parse(after.assignedAt) : Infinity;
    if (end > start) out.push([before.number, after.number]);
  }
  return out;
}

/** Timeline entries recorded for one state. */
export function entries(job: Job, state: JobState): number {
  return job.timeline.filter((t) => t.state === state).length;
}

/** The terminal entry is the last one: nothing was written after the job ended. */
export function endsAtTerminal(job: Job): boolean {
  const lastEntry = job.timeline[job.timeline.length - 1];
  return lastEntry !== undefined && TERMINAL.has(lastEntry.state) && job.timeline.filter((t) => TERMINAL.has(t.state)).length === 1;
}
