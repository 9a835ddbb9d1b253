/**
 * The operator's view of the cluster, answered by any peer: agents on every
 * peer (from the mesh directory) plus the ones this peer saw leave, peers,
 * the leader, and what the scheduler could not place.
 */
import { backlogByLabelSet, snapshotOf, type Backlog } from '../routing/index.js';
import { executorsIn } from '../proto/executor-labels.js';
import { AgentState, type Agent, type RotateAgentResponse } from '../proto/gen/runmesh/v1/cluster.js';
import type { ClusterView } from './api/cluster-service.js';
import { stateOf, type AgentCacheStats, type AgentEntry, type AgentRegistry } from './gateway/registry.js';
import type { CredentialRotation } from './gateway/rotation.js';
import type { AgentCredentials } from './mesh/agent-credentials.js';
import type { AgentRecord } from './mesh/agent-directory.js';
import type { MeshAgents } from './mesh/agents.js';
import type { PeerDispatch } from './mesh/dispatch.js';
import type { Mesh } from './mesh/mesh.js';
import type { ActiveIndex } from './scheduler/active-index.js';
import { add } from './scheduler/convert.js';
import type { Scheduler } from './scheduler/scheduler.js';

type AgentFacts = Pick<
  Agent,
  | 'name'
  | 'state'
  | 'labels'
  | 'capacity'
  | 'version'
  | 'peer'
  | 'hostname'
  | 'connectedAt'
  | 'lastHeartbeat'
  | 'load'
  | 'unhealthy'
  | 'containment'
  | 'cacheBytes'
  | 'cacheEntries'
  | 'cacheHits'
  | 'cacheMisses'
>;

/** Agent's cache fields from the figures its heartbeat gave; none for an agent that gives none. */
const cacheFields = (c: AgentCacheStats | undefined): Pick<Agent, 'cacheBytes' | 'cacheEntries' | 'cacheHits' | 'cacheMisses'> =>
  c ? { cacheBytes: BigInt(c.bytes), cacheEntries: c.entries, cacheHits: c.hits, cacheMisses: c.misses } : {};

/** The one way an Agent message is built: what is known of it, plus its executors (from its labels) and its work from the index. */
const agentProto = (a: AgentFacts, index: ActiveIndex): Agent => ({
  ...a,
  executors: executorsIn(a.labels),
  free: add(a.capacity ?? { slots: 0, cpuMillis: 0, memoryMb: 0 }, index.usageOf(a.name), -1),
  running: index.jobsOn(a.name).length,
});

/** What the view reads: the mesh and its agents, this peer's registry and index, and the scheduler. */
export interface ClusterViewSources {
  mesh: Mesh;
  agents: MeshAgents;
  dispatch: PeerDispatch;
  registry: AgentRegistry;
  index: ActiveIndex;
  scheduler: Scheduler;
  credentials: AgentCredentials;
  rotation: CredentialRotation;
}

/** Label sets the backlog lists (status and /metrics): bounded, whatever selectors jobs carry. */
export const MAX_BACKLOG_LABEL_SETS = 50;

/** How long RotateAgent waits for a connected agent to save its new credential. */
const ROTATE_WAIT_MS = 5_000;

export function clusterView(sources: ClusterViewSources): ClusterView {
  const { mesh, agents, dispatch, registry, index, scheduler, credentials } = sources;
  const fromRecord = (r: AgentRecord): Agent => {
    const local = registry.get(r.name);
    const state = r.draining
      ? AgentState.AGENT_STATE_DRAINING
      : r.unhealthy
        ? AgentState.AGENT_STATE_UNHEALTHY
        : r.cordoned
          ? AgentState.AGENT_STATE_CORDONED
          : AgentState.AGENT_STATE_READY;
    const { name, labels, capacity, version, hostname, containment, connectedAt } = r;
    return agentProto(
      {
        name,
        state,
        labels,
        capacity,
        version,
        hostname,
        containment,
        connectedAt,
        peer: r.peerId,
        lastHeartbeat: local?.link ? local.lastHeartbeat.toISOString() : undefined,
        load: agents.loadOf(r),
        unhealthy: r.unhealthy,
        ...cacheFields(local?.link ? local.cache : r.cache),
      },
      index,
    );
  };
  const fromLocal = (e: AgentEntry): Agent => {
    const { name, labels, capacity, version, hostname, containment, load, unhealthy } = e;
    return agentProto(
      {
        name,
        state: stateOf(e),
        labels,
        capacity,
        version,
        hostname,
        containment,
        load,
        unhealthy,
        ...cacheFields(e.cache),
        peer: mesh.peerId,
        connectedAt: e.connectedAt.toISOString(),
        lastHeartbeat: e.lastHeartbeat.toISOString(),
      },
      index,
    );
  };
  return {
    agents: () => {
      const connected = mesh.directory.all().map(fromRecord);
      const names = new Set(connected.map((a) => a.name));
      const gone = registry
        .all()
        .filter((e) => !names.has(e.name) && stateOf(e) === AgentState.AGENT_STATE_DISCONNECTED)
        .map(fromLocal);
      return [...connected, ...gone].sort((a, b) => a.name.localeCompare(b.name));
    },
    peers: () => mesh.peers(),
    leader: () => mesh.leaderId(),
    unschedulable: () => scheduler.unschedulable(),
    backlog: (): Backlog => backlogByLabelSet(snapshotOf(agents.views(index)), index.queued.values(), MAX_BACKLOG_LABEL_SETS),
    drain: (name, reason) => dispatch.drain(name, reason),
    setCordoned: async (name, cordoned) => {
      registry.setCordoned(name, cordoned);
      await mesh.directory.setCordoned(name, cordoned);
    },
    // Every peer (this one too) hears of the delete through its watch and ends the agent's stream.
    revokeAgent: (name) => credentials.revoke(name),
    rotateAgent: (name) => rotateAgent(sources, name),
  };
}

/**
 * Marks the agent for rotation (the peer holding its stream hears of it
 * through its watch and hands out a new credential), then waits up to
 * ROTATE_WAIT_MS for the old credential to stop being accepted: the sign
 * that the agent saved the new one.
 */
async function rotateAgent({ credentials, rotation }: ClusterViewSources, name: string): Promise<RotateAgentResponse> {
  const before = (await credentials.lookup(name))?.record.hash;
  if (before === undefined) return { requested: false, rotated: false };
  let stop = (): void => {};
  const replaced = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ROTATE_WAIT_MS);
    const off = credentials.onRevoked((n, hash) => n === name && hash === before && resolve());
    stop = () => {
      clearTimeout(timer);
      off();
    };
  });
  try {
    if (!(await rotation.request(name))) return { requested: false, rotated: false };
    await replaced;
  } finally {
    stop();
  }
  // Dropped by a revocation rather than a rotation: then there is no record.
  const now = await credentials.lookup(name);
  return { requested: true, rotated: now !== undefined && now.record.hash !== before };
}
