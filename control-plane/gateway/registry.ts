/**
 * Agents known to this control plane: their advertised shape, their state as
 * operators see it, and the live session (if connected here). The mesh
 * directory announces what is connected; operators also see, from here,
 * the agents that left this peer.
 */
import { AgentState } from '../../proto/gen/runmesh/v1/cluster.js';
import type { Resources } from '../../routing/index.js';
import { resourcesOf } from '../scheduler/convert.js';
import type { ConnectResponse, Hello } from '../../proto/gen/runmesh/v1/agent.js';

/** What the registry needs of a session: a way to talk to the agent. */
export interface AgentLink {
  readonly sessionId: string;
  send(msg: ConnectResponse): boolean;
  close(reason: string): void;
}

export interface AgentEntry {
  name: string;
  labels: Record<string, string>;
  capacity: Resources;
  version: string;
  hostname: string;
  /** How it contains its attempts, as its Hello said ('' when it does not say). */
  containment: string;
  cordoned: boolean;
  draining: boolean;
  /** Why the agent takes no work, from its last heartbeat ('' when healthy). */
  unhealthy: string;
  load: number;
  /** Its job cache, from its last heartbeat; undefined from an agent that does not report one. */
  cache: AgentCacheStats | undefined;
  connectedAt: Date;
  lastHeartbeat: Date;
  link: AgentLink | undefined;
}

export class AgentRegistry {
  private readonly agents = new Map<string, AgentEntry>();
  private readonly listeners = new Set<() => void>();

  /** Registers (or re-registers) a connected agent; returns the session it replaces, if any. */
  connect(hello: Hello, link: AgentLink, now: Date): AgentLink | undefined {
    const prev = this.agents.get(hello.name);
    this.agents.set(hello.name, {
      name: hello.name,
      labels: { ...hello.labels },
      capacity: resourcesOf(hello.capacity),
      version: hello.version,
      hostname: hello.hostname,
      containment: hello.containment,
      cordoned: prev?.cordoned ?? false,
      draining: false,
      unhealthy: '',
      load: 0,
      cache: undefined,
      connectedAt: now,
      lastHeartbeat: now,
      link,
    });
    this.changed();
    return prev?.link !== link ? prev?.link : undefined;
  }

  /** Marks the agent disconnected if `link` is still its session. */
  disconnect(name: string, link: AgentLink): boolean {
    const e = this.agents.get(name);
    if (!e || e.link !== link) return false;
    e.link = undefined;
    this.changed();
    return true;
  }

  heartbeat(name: string, beat: Beat, now: Date): void {
    const e = this.agents.get(name);
    if (!e) return;
    e.lastHeartbeat = now;
    const moved = announcedLoad(e.load) !== announcedLoad(beat.load);
    e.load = hostLoad(beat.load);
    const cache = cacheOf(beat);
    const cacheMoved = JSON.stringify(cache) !== JSON.stringify(e.cache);
    e.cache = cache;
    if (e.draining !== beat.draining || e.unhealthy !== beat.unhealthy || moved || cacheMoved) {
      e.draining = beat.draining;
      e.unhealthy = beat.unhealthy;
      this.changed();
    }
  }

  get(name: string): AgentEntry | undefined {
    return this.agents.get(name);
  }

  all(): AgentEntry[] {
    return [...this.agents.values()];
  }

  setCordoned(name: string, cordoned: boolean): AgentEntry | undefined {
    const e = this.agents.get(name);
    if (e) {
      e.cordoned = cordoned;
      this.changed();
    }
    return e;
  }

  setDraining(name: string): AgentEntry | undefined {
    const e = this.agents.get(name);
    if (e) {
      e.draining = true;
      this.changed();
    }
    return e;
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(): void {
    for (const l of this.listeners) l();
  }
}

/** An agent's job cache as its heartbeat says (agent/cache/): announced with its record, shown by GetAgent. */
export interface AgentCacheStats {
  bytes: number;
  entries: number;
  hits: number;
  misses: number;
}

interface Beat {
  load: number;
  draining: boolean;
  unhealthy: string;
  cacheBytes?: bigint;
  cacheEntries?: number;
  cacheHits?: number;
  cacheMisses?: number;
}

/** The cache figures of a heartbeat; undefined when the agent sends none (one older than caches). */
const cacheOf = (b: Beat): AgentCacheStats | undefined =>
  b.cacheBytes === undefined
    ? undefined
    : { bytes: Number(b.cacheBytes), entries: b.cacheEntries ?? 0, hits: b.cacheHits ?? 0, misses: b.cacheMisses ?? 0 };

/** A reported host load, 0 when it is not a positive number. */
const hostLoad = (load: number): number => (Number.isFinite(load) && load > 0 ? load : 0);

/** An agent's load as the mesh is told of it: in tenths, so a host's load average moving a little writes nothing. */
export function announcedLoad(load: number): number {
  return Math.round(hostLoad(load) * 10) / 10;
}

export function stateOf(e: AgentEntry): AgentState {
  if (!e.link) return AgentState.AGENT_STATE_DISCONNECTED;
  if (e.draining) return AgentState.AGENT_STATE_DRAINING;
  if (e.unhealthy) return AgentState.AGENT_STATE_UNHEALTHY;
  if (e.cordoned) return AgentState.AGENT_STATE_CORDONED;
  return AgentState.AGENT_STATE_READY;
}
