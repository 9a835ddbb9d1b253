/**
 * This peer's place in the mesh: it joins (membership under a lease),
 * campaigns for the scheduler leadership, announces the agents it holds, and
 * routes what the scheduler and API decide to whichever peer holds the agent
 * (this one, through the gateway, or another, through PeerService). On one
 * host with the embedded store it is a mesh of one: the same code path.
 */
import type { Logger } from 'pino';
import type { Assign } from '../../proto/gen/runmesh/v1/agent.js';
import type { Peer } from '../../proto/gen/runmesh/v1/cluster.js';
import type { AgentView } from '../../routing/index.js';
import type { AgentPublisher, Gateway } from '../gateway/gateway.js';
import type { AgentEntry, AgentRegistry } from '../gateway/registry.js';
import { NotLeaderError } from '../jobs/errors.js';
import type { JobRecord } from '../jobs/record.js';
import type { ActiveIndex } from '../scheduler/active-index.js';
import { add } from '../scheduler/convert.js';
import type { AgentSource, Dispatcher } from '../scheduler/scheduler.js';
import type { Compare, Store } from '../store/store.js';
import { AgentDirectory } from './agent-directory.js';
import { LeaderElection, leaderFence } from './election.js';
import { PeerMembership } from './membership.js';
import { PeerClients } from './peer-clients.js';
import type { LogRecord, PeerHandler } from './peer-service.js';

export interface MeshNodeOptions {
  store: Store;
  peerId: string;
  grpcAddress: string;
  httpAddress: string;
  ttlSeconds: number;
  gateway: Gateway;
  registry: AgentRegistry;
  /** Reads a log held here (PeerService.ReadLog). */
  readLocalLog: PeerHandler['readLog'];
  logger: Logger;
}

export class MeshNode implements Dispatcher, AgentSource, AgentPublisher, PeerHandler {
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly o: MeshNodeOptions,
    readonly membership: PeerMembership,
    readonly election: LeaderElection,
    readonly directory: AgentDirectory,
    private readonly clients: PeerClients,
  ) {
    membership.onChange((peers) => {
      const alive = new Set(peers.map((p) => p.grpcAddress));
      for (const p of this.known) if (!alive.has(p)) clients.forget(p);
      this.known = alive;
    });
  }

  private known = new Set<string>();

  static async start(o: MeshNodeOptions): Promise<MeshNode> {
    const logger = o.logger;
    const membership = await PeerMembership.join(o.store, { peerId: o.peerId, grpcAddress: o.grpcAddress, httpAddress: o.httpAddress, ttlSeconds: o.ttlSeconds, logger });
    const directory = await AgentDirectory.open(o.store, { logger });
    const election = await LeaderElection.start(o.store, { peerId: o.peerId, grpcAddress: o.grpcAddress, lease: membership.lease, ttlSeconds: o.ttlSeconds, logger });
    return new MeshNode(o, membership, election, directory, new PeerClients());
  }

  get peerId(): string {
    return this.o.peerId;
  }

  /** Resolves when this peer's lease is lost: it must stop acting for the mesh. */
  get lost(): Promise<Error> {
    return this.membership.lost;
  }

  isLeader(): boolean {
    return this.election.isLeader();
  }

  /** Compares every scheduling write carries; throws when this peer may not schedule. */
  fence(): Compare[] {
    const term = this.election.term;
    if (!this.election.isLeader() || term === undefined) throw new NotLeaderError();
    return [leaderFence(term)];
  }

  // AgentSource: every agent on every peer.
  views(index: ActiveIndex): AgentView[] {
    return this.directory.all().map((r) => ({
      name: r.name,
      labels: r.labels,
      capacity: r.capacity,
      free: add(r.capacity, index.usageOf(r.name), -1),
      load: this.o.registry.get(r.name)?.load ?? 0,
      schedulable: !r.cordoned && !r.draining,
    }));
  }

  connected(name: string): boolean {
    return this.directory.get(name) !== undefined;
  }

  /** The gRPC address of the peer holding `agent`, or 'self'. */
  private holder(agent: string): string | 'self' | undefined {
    const r = this.directory.get(agent);
    if (!r) return undefined;
    if (r.peerId === this.o.peerId) return 'self';
    return this.membership.peer(r.peerId)?.grpcAddress;
  }

  // Dispatcher
  async assign(agent: string, record: JobRecord): Promise<boolean> {
    const timeoutMs = (record.job.spec?.timeoutSeconds ?? 3600) * 1000;
    const msg: Assign = { jobId: record.job.id, attempt: record.job.attempt, spec: record.job.spec, deadline: new Date(Date.now() + timeoutMs).toISOString() };
    const at = this.holder(agent);
    if (at === 'self') return this.o.gateway.deliverAssign(agent, msg);
    return at ? this.clients.deliverAssign(at, agent, msg) : false;
  }

  async cancel(agent: string, jobId: string, attempt: number, graceSeconds: number, reason: string): Promise<boolean> {
    const msg = { jobId, attempt, graceSeconds, reason };
    const at = this.holder(agent);
    if (at === 'self') return this.o.gateway.deliverCancel(agent, msg);
    return at ? this.clients.deliverCancel(at, agent, msg) : false;
  }

  async drain(agent: string, reason: string): Promise<boolean> {
    const at = this.holder(agent);
    if (at === 'self') return this.o.gateway.deliverDrain(agent, { reason });
    return at ? this.clients.deliverDrain(at, agent, { reason }) : false;
  }

  // AgentPublisher
  publish(e: AgentEntry): Promise<unknown> {
    const { name, labels, capacity, version, hostname, cordoned, draining } = e;
    return this.directory.publish({ name, peerId: this.o.peerId, labels, capacity, version, hostname, connectedAt: e.connectedAt.toISOString(), cordoned, draining }, this.membership.lease);
  }

  unpublish(name: string): Promise<unknown> {
    return this.directory.unpublish(name, this.o.peerId);
  }

  // PeerHandler: what other peers ask of this one.
  deliverAssign(agent: string, assign: Assign): boolean {
    return this.o.gateway.deliverAssign(agent, assign);
  }

  deliverCancel(agent: string, cancel: Parameters<PeerHandler['deliverCancel']>[1]): boolean {
    return this.o.gateway.deliverCancel(agent, cancel);
  }

  deliverDrain(agent: string, drain: Parameters<PeerHandler['deliverDrain']>[1]): boolean {
    return this.o.gateway.deliverDrain(agent, drain);
  }

  readLog(jobId: string, attempt: number, fromSeq: number, follow: boolean, signal: AbortSignal): AsyncIterable<LogRecord> {
    return this.o.readLocalLog(jobId, attempt, fromSeq, follow, signal);
  }

  /**
   * Where an attempt's log lives when not here: the peer that accepted its
   * result (finished), or the peer holding its agent now (running).
   */
  remoteLog(record: JobRecord, attempt: number, fromSeq: number, follow: boolean, signal: AbortSignal): AsyncIterable<LogRecord> | undefined {
    const running = record.job.attempt === attempt && !record.job.attempts.at(-1)?.finishedAt;
    const peerId = running ? this.directory.get(record.job.attempts.at(-1)?.agent ?? '')?.peerId : record.logPeers?.[attempt];
    if (!peerId || peerId === this.o.peerId) return undefined;
    const address = this.membership.peer(peerId)?.grpcAddress;
    return address ? this.clients.readLog(address, { jobId: record.job.id, attempt, fromSeq, follow }, signal) : undefined;
  }

  peers(): Peer[] {
    const leader = this.election.leader()?.peerId;
    const counts = new Map<string, number>();
    for (const a of this.directory.all()) counts.set(a.peerId, (counts.get(a.peerId) ?? 0) + 1);
    return this.membership.peers().map((p) => ({ id: p.id, address: p.grpcAddress, leader: p.id === leader, agents: counts.get(p.id) ?? 0 }));
  }

  leaderId(): string {
    return this.election.leader()?.peerId ?? '';
  }

  /** Resigns, withdraws, leaves; every step runs. Idempotent. */
  close(): Promise<void> {
    return (this.closing ??= (async () => {
      for (const step of [() => this.election.close(), () => this.directory.close(), () => this.membership.close(), () => this.clients.close()]) {
        try {
          await step();
        } catch (err) {
          this.o.logger.warn({ err }, 'mesh shutdown step failed');
        }
      }
    })());
  }
}
