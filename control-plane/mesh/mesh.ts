/**
 * This peer's place in the mesh: it joins (membership under a lease),
 * follows the mesh-wide agent directory, and campaigns for the scheduler
 * leadership. It answers who the peers are, who leads, and whether this peer
 * may schedule (`fence`). Delivering to agents (`dispatch.ts`), the agents'
 * mesh-wide view (`agents.ts`) and log copies (`log-copies.ts`) are built on
 * it. On one host with the embedded store it is a mesh of one: the same code.
 */
import type { Logger } from 'pino';
import type { Peer } from '../../proto/gen/runmesh/v1/cluster.js';
import { NotLeaderError } from '../jobs/errors.js';
import type { Compare, Lease, Store } from '../store/store.js';
import { AgentDirectory } from './agent-directory.js';
import { LeaderElection, leaderFence } from './election.js';
import { PeerMembership, type PeerInfo } from './membership.js';
import { closeInOrder } from '../close.js';

export interface MeshOptions {
  store: Store;
  peerId: string;
  /** The address clients and agents dial; other peers too, unless `peerAddress` is given. */
  grpcAddress: string;
  /** Where PeerService is served when it has a listener of its own (`--peer-listen`). */
  peerAddress?: string;
  httpAddress: string;
  ttlSeconds: number;
  logger: Logger;
}

export class Mesh {
  private closing: Promise<void> | undefined;

  private constructor(
    readonly peerId: string,
    readonly membership: PeerMembership,
    readonly election: LeaderElection,
    readonly directory: AgentDirectory,
    private readonly log: Logger,
  ) {}

  static async join(o: MeshOptions): Promise<Mesh> {
    const { logger } = o;
    const membership = await PeerMembership.join(o.store, {
      peerId: o.peerId,
      grpcAddress: o.grpcAddress,
      peerAddress: o.peerAddress,
      httpAddress: o.httpAddress,
      ttlSeconds: o.ttlSeconds,
      logger,
    });
    const directory = await AgentDirectory.open(o.store, { logger });
    const election = await LeaderElection.start(o.store, {
      peerId: o.peerId,
      grpcAddress: o.grpcAddress,
      lease: membership.lease,
      ttlSeconds: o.ttlSeconds,
      logger,
    });
    return new Mesh(o.peerId, membership, election, directory, logger);
  }

  /** The peer's lease: keys that must die with the peer (agent entries) hang on it. */
  get lease(): Lease {
    return this.membership.lease;
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

  /** A live peer by id (this one included). */
  peer(id: string): PeerInfo | undefined {
    return this.membership.peer(id);
  }

  /** The live peers other than this one. */
  others(): PeerInfo[] {
    return this.membership.peers().filter((p) => p.id !== this.peerId);
  }

  /** The peers as ClusterService shows them, with the leader marked and their agent counts. */
  peers(): Peer[] {
    const leader = this.leaderId();
    const counts = new Map<string, number>();
    for (const a of this.directory.all()) counts.set(a.peerId, (counts.get(a.peerId) ?? 0) + 1);
    return this.membership
      .peers()
      .map((p) => ({ id: p.id, address: p.grpcAddress, leader: p.id === leader, agents: counts.get(p.id) ?? 0 }));
  }

  leaderId(): string {
    return this.election.leader()?.peerId ?? '';
  }

  /** Resigns, withdraws, leaves; every step runs. Idempotent. */
  close(): Promise<void> {
    return (this.closing ??= closeInOrder(this.log, 'mesh', [
      ['election', () => this.election.close()],
      ['directory', () => this.directory.close()],
      ['membership', () => this.membership.close()],
    ]));
  }
}
