/**
 * The agents of the whole mesh as this peer's scheduler and gateway see them:
 * the router's views (every agent on every peer, with free resources from the
 * active index) and the publishing of the agents this peer holds, under its
 * lease so their entries die with it.
 */
import type { AgentView } from '../../routing/index.js';
import type { AgentPublisher } from '../gateway/gateway.js';
import { announcedLoad, type AgentEntry, type AgentRegistry } from '../gateway/registry.js';
import type { ActiveIndex } from '../scheduler/active-index.js';
import { add } from '../scheduler/convert.js';
import type { AgentSource } from '../scheduler/scheduler.js';
import type { AgentRecord } from './agent-directory.js';
import type { Mesh } from './mesh.js';

export class MeshAgents implements AgentSource, AgentPublisher {
  constructor(
    private readonly mesh: Mesh,
    /** The agents whose streams this peer holds (their latest heartbeats). */
    private readonly registry: AgentRegistry,
  ) {}

  /** Every agent on every peer, for the router. */
  views(index: ActiveIndex): AgentView[] {
    return this.mesh.directory.all().map((r) => ({
      name: r.name,
      labels: r.labels,
      capacity: r.capacity,
      free: add(r.capacity, index.usageOf(r.name), -1),
      load: this.loadOf(r),
      schedulable: !r.cordoned && !r.draining && !r.unhealthy,
    }));
  }

  /** The agent's host load: its latest heartbeat when held here, else as its peer last announced it. */
  loadOf(r: AgentRecord): number {
    const local = this.registry.get(r.name);
    return local?.link ? local.load : r.load;
  }

  connected(name: string): boolean {
    return this.mesh.directory.get(name) !== undefined;
  }

  publish(e: AgentEntry): Promise<unknown> {
    const { name, labels, capacity, version, hostname, containment, cordoned, draining, unhealthy } = e;
    const load = announcedLoad(e.load);
    const record: AgentRecord = {
      name,
      peerId: this.mesh.peerId,
      labels,
      capacity,
      version,
      hostname,
      containment,
      connectedAt: e.connectedAt.toISOString(),
      cordoned,
      draining,
      unhealthy,
      load,
      ...(e.cache && { cache: e.cache }),
    };
    return this.mesh.directory.publish(record, this.mesh.lease);
  }

  /** Publishes every agent held here again (on the current lease, after a rejoin); failures are left to the next change or rejoin. */
  republish(): void {
    for (const e of this.registry.all()) if (e.link) void this.publish(e).catch(() => undefined);
  }

  unpublish(name: string): Promise<unknown> {
    return this.mesh.directory.unpublish(name, this.mesh.peerId);
  }
}
