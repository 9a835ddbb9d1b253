/**
 * The agents of the whole mesh. The peer holding an agent's stream publishes
 * it at `/runmesh/agents/<name>` on that peer's lease, so a dead peer's agents
 * vanish with it and reappear when they reconnect elsewhere. Operator intent
 * (cordon) is not part of a session: it lives at `/runmesh/agent-config/<name>`
 * without a lease, and outlives reconnects to any peer.
 */
import pino, { type Logger } from 'pino';
import type { KeyValue, Lease, Store } from '../store/store.js';
import { AGENT_CONFIG_PREFIX, AGENTS_PREFIX, agentConfigKey, agentKey } from './keys.js';
import { parseRecord, WatchedPrefix } from './watched-prefix.js';
import type { AgentCacheStats } from '../gateway/registry.js';

/** An agent as the mesh sees it. */
export interface AgentRecord {
  name: string;
  /** The peer holding the agent's stream. */
  peerId: string;
  labels: Record<string, string>;
  capacity: { slots: number; cpuMillis: number; memoryMb: number };
  version: string;
  hostname: string;
  /** How the agent contains its attempts, as its Hello said ('' when it does not say, or from a peer that predates it). */
  containment: string;
  /** ISO time the current session began. */
  connectedAt: string;
  /** From the agent's config when one is stored (operator intent wins over the session's copy). */
  cordoned: boolean;
  draining: boolean;
  /** Why the agent takes no work ('' when healthy), as its last heartbeat said: the router skips it. */
  unhealthy: string;
  /**
   * Host load (one-minute load average over cores) as last announced: the
   * holding peer republishes it when it moves by a tenth, so every peer's
   * router and ListAgents see it.
   */
  load: number;
  /** Its job cache, as the holding peer last announced it (absent: the agent reports none). */
  cache?: AgentCacheStats;
}

/** What operators decide about an agent, kept across sessions. */
export interface AgentConfig {
  cordoned: boolean;
}

export interface AgentDirectoryOptions {
  logger?: Logger;
}

export class AgentDirectory {
  private closing: Promise<void> | undefined;
  private everyone: readonly AgentRecord[] | undefined;

  private constructor(
    private readonly store: Store,
    private readonly agents: WatchedPrefix<AgentRecord>,
    private readonly configs: WatchedPrefix<AgentConfig>,
    private readonly log: Logger,
  ) {
    const changed = (): void => void (this.everyone = undefined);
    agents.onChange(changed);
    configs.onChange(changed);
  }

  /** Reads and starts watching the mesh's agents and their configs. */
  static async open(store: Store, options: AgentDirectoryOptions = {}): Promise<AgentDirectory> {
    const log = (options.logger ?? pino({ level: 'silent' })).child({ component: 'agent-directory' });
    const agents = await WatchedPrefix.open({ store, prefix: AGENTS_PREFIX, parse: (kv) => parseAgent(kv, log), logger: log });
    try {
      const configs = await WatchedPrefix.open({ store, prefix: AGENT_CONFIG_PREFIX, parse: (kv) => parseConfig(kv, log), logger: log });
      return new AgentDirectory(store, agents, configs, log);
    } catch (err) {
      await agents.close();
      throw err;
    }
  }

  /**
   * Publishes (or updates) an agent held by this peer, on the peer's lease.
   * The latest session wins: a record of the same agent from another peer is
   * replaced. Returns the store revision of the write.
   */
  publish(record: AgentRecord, lease: Lease): Promise<number> {
    return this.store.put(agentKey(record.name), JSON.stringify(record), { lease: lease.id });
  }

  /**
   * Removes the agent's record if `peerId` still holds it; a record that a
   * newer session on another peer wrote is left alone. True if deleted.
   */
  async unpublish(name: string, peerId: string): Promise<boolean> {
    const key = agentKey(name);
    const kv = await this.store.get(key);
    if (!kv || parseAgent(kv, this.log)?.peerId !== peerId) return false;
    // Delete exactly the version we just read as ours: a republish by another peer in between wins.
    const res = await this.store.txn({
      compare: [{ key, target: 'modRevision', op: '==', value: kv.modRevision }],
      success: [{ type: 'delete', key }],
    });
    return res.succeeded;
  }

  /** Every agent in the mesh, by name (built once per change: the scheduler asks every round). */
  all(): readonly AgentRecord[] {
    this.everyone ??= this.agents.entriesInOrder().map((e) => this.withConfig(e.value));
    return this.everyone;
  }

  get(name: string): AgentRecord | undefined {
    const record = this.agents.get(agentKey(name))?.value;
    return record && this.withConfig(record);
  }

  /** The operator's settings for `name` (defaults when none are stored). */
  config(name: string): AgentConfig {
    return this.configs.get(agentConfigKey(name))?.value ?? { cordoned: false };
  }

  /** Records the operator's cordon decision; it holds across reconnects to any peer. */
  async setCordoned(name: string, cordoned: boolean): Promise<void> {
    await this.store.put(agentConfigKey(name), JSON.stringify({ cordoned } satisfies AgentConfig));
    this.log.info({ agent: name, cordoned }, 'agent cordon set');
  }

  /** Calls `listener` after any change to agents or their configs; returns the unsubscribe. */
  onChange(listener: () => void): () => void {
    const offAgents = this.agents.onChange(listener);
    const offConfigs = this.configs.onChange(listener);
    return () => {
      offAgents();
      offConfigs();
    };
  }

  /** Stops watching; idempotent. Published records stay (they go with their lease). */
  close(): Promise<void> {
    this.closing ??= Promise.allSettled([this.agents.close(), this.configs.close()]).then(() => undefined);
    return this.closing;
  }

  private withConfig(record: AgentRecord): AgentRecord {
    const config = this.configs.get(agentConfigKey(record.name))?.value;
    return config ? { ...record, cordoned: config.cordoned } : record;
  }
}

function parseAgent(kv: KeyValue, log: Logger): AgentRecord | undefined {
  return parseRecord<AgentRecord, 'name' | 'peerId', AgentRecord>(kv, log, { what: 'agent', required: ['name', 'peerId'] }, (v) => ({
    name: v.name,
    peerId: v.peerId,
    labels: v.labels ?? {},
    capacity: v.capacity ?? { slots: 0, cpuMillis: 0, memoryMb: 0 },
    version: v.version ?? '',
    hostname: v.hostname ?? '',
    containment: v.containment ?? '',
    connectedAt: v.connectedAt ?? '',
    cordoned: v.cordoned === true,
    draining: v.draining === true,
    unhealthy: typeof v.unhealthy === 'string' ? v.unhealthy : '',
    load: typeof v.load === 'number' && Number.isFinite(v.load) ? v.load : 0,
    ...(isCacheStats(v.cache) && { cache: v.cache }),
  }));
}

const isCacheStats = (c: unknown): c is AgentCacheStats =>
  typeof c === 'object' &&
  c !== null &&
  ['bytes', 'entries', 'hits', 'misses'].every((k) => Number.isFinite((c as Record<string, unknown>)[k]));

function parseConfig(kv: KeyValue, log: Logger): AgentConfig | undefined {
  return parseRecord<AgentConfig, never, AgentConfig>(kv, log, { what: 'agent config', required: [] }, (v) => ({
    cordoned: v.cordoned === true,
  }));
}
