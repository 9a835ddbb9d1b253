/**
 * This peer's place in the mesh: it joins (membership under a lease),
 * follows the mesh-wide agent directory, and campaigns for the scheduler
 * leadership. It answers who the peers are, who leads, and whether this peer
 * may schedule (`fence`). Delivering to agents (`dispatch.ts`), the agents'
 * mesh-wide view (`agents.ts`) and log copies (`log-copies.ts`) are built on
 * it. On one host with the embedded store it is a mesh of one: the same code.
 *
 * Losing the lease (the store unreachable past its TTL, or this process
 * paused that long) does not end the peer: it is **degraded** (it cannot
 * lead, its peer and agent entries may be gone) and rejoins, with a new lease,
 * as soon as the store answers: it registers again, campaigns again, and
 * tells `onRejoined` listeners, which publish its agents again. Everything
 * else (agents' streams, their logs) goes on meanwhile.
 */
import type { Logger } from 'pino';
import { Backoff, delay } from '../../transport/retry.js';
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

/** Waits between tries to rejoin after the lease was lost: short, so that agents are published again before anyone counts them lost. */
const REJOIN = { baseMs: 200, capMs: 2_000 };

export class Mesh {
  private closing: Promise<void> | undefined;
  /** Why this peer is out of the mesh for now (lease lost, rejoining); undefined while it is a member. */
  private degradedBy: string | undefined;
  private readonly peerListeners = new Set<(peers: PeerInfo[]) => void>();
  private readonly leaderListeners = new Set<() => void>();
  private readonly rejoinListeners = new Set<() => void>();
  private readonly stop = new AbortController();

  private constructor(
    private readonly o: MeshOptions,
    private membership: PeerMembership,
    private election: LeaderElection,
    readonly directory: AgentDirectory,
    private readonly log: Logger,
  ) {
    this.follow();
  }

  static async join(o: MeshOptions): Promise<Mesh> {
    const membership = await PeerMembership.join(o.store, membershipOptions(o));
    try {
      const directory = await AgentDirectory.open(o.store, { logger: o.logger });
      const election = await LeaderElection.start(o.store, electionOptions(o, membership.lease));
      return new Mesh(o, membership, election, directory, o.logger);
    } catch (err) {
      await membership.close();
      throw err;
    }
  }

  get peerId(): string {
    return this.o.peerId;
  }

  /** The peer's current lease: keys that must die with the peer (agent entries) hang on it. */
  get lease(): Lease {
    return this.membership.lease;
  }

  /** Why this peer is out of the mesh for now (its lease was lost and it is rejoining); undefined while it is a member. */
  degraded(): string | undefined {
    return this.degradedBy;
  }

  /** Calls `listener` with the peer list whenever it changes, across rejoins; returns the unsubscribe. */
  onPeersChange(listener: (peers: PeerInfo[]) => void): () => void {
    this.peerListeners.add(listener);
    return () => void this.peerListeners.delete(listener);
  }

  /** Calls `listener` when the leader, the term or `isLeader()` may have changed, across rejoins; returns the unsubscribe. */
  onLeaderChange(listener: () => void): () => void {
    this.leaderListeners.add(listener);
    return () => void this.leaderListeners.delete(listener);
  }

  /** Calls `listener` each time this peer is a member again after losing its lease (publish what hung on the old one). */
  onRejoined(listener: () => void): () => void {
    this.rejoinListeners.add(listener);
    return () => void this.rejoinListeners.delete(listener);
  }

  /** Forwards the current membership's and election's changes, and rejoins when the lease is lost. */
  private follow(): void {
    const { membership, election } = this;
    membership.onChange((peers) => {
      if (this.membership === membership) for (const l of this.peerListeners) l(peers);
    });
    election.onChange(() => {
      if (this.election === election) for (const l of this.leaderListeners) l();
    });
    void membership.lost.then((err) => {
      if (this.membership === membership && !this.closing) void this.rejoin(err);
    });
  }

  /**
   * Leaves the lost membership and election behind (their close runs in the
   * background: the store may not answer) and joins again with a new lease,
   * retrying until the store answers or the mesh closes.
   */
  private async rejoin(err: Error): Promise<void> {
    this.degradedBy = `lost this peer's lease in the store (${err.message}); rejoining`;
    this.log.error({ err }, 'peer lease lost: not scheduling, rejoining the mesh as soon as the store answers');
    for (const l of this.leaderListeners) l();
    const [oldMembership, oldElection] = [this.membership, this.election];
    void oldElection.close().then(() => oldMembership.close());
    const backoff = new Backoff(REJOIN);
    for (let tries = 1; !this.stop.signal.aborted; tries++) {
      try {
        const membership = await PeerMembership.join(this.o.store, membershipOptions(this.o));
        try {
          this.election = await LeaderElection.start(this.o.store, electionOptions(this.o, membership.lease));
        } catch (e) {
          await membership.close().catch(() => undefined);
          throw e;
        }
        this.membership = membership;
        this.follow();
        this.degradedBy = undefined;
        this.log.info({ tries, lease: membership.lease.id }, 'rejoined the mesh with a new lease');
        for (const l of this.rejoinListeners) l();
        for (const l of this.peerListeners) l(membership.peers());
        for (const l of this.leaderListeners) l();
        return;
      } catch (e) {
        if (tries === 1 || tries % 10 === 0) this.log.warn({ err: e, tries }, 'could not rejoin the mesh yet; trying again');
        await delay(backoff.next(), this.stop.signal).catch(() => undefined);
      }
    }
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
    this.stop.abort();
    return (this.closing ??= closeInOrder(this.log, 'mesh', [
      ['election', () => this.election.close()],
      ['directory', () => this.directory.close()],
      ['membership', () => this.membership.close()],
    ]));
  }
}

function membershipOptions(o: MeshOptions) {
  return {
    peerId: o.peerId,
    grpcAddress: o.grpcAddress,
    peerAddress: o.peerAddress,
    httpAddress: o.httpAddress,
    ttlSeconds: o.ttlSeconds,
    logger: o.logger,
  };
}

function electionOptions(o: MeshOptions, lease: Lease) {
  return { peerId: o.peerId, grpcAddress: o.grpcAddress, lease, ttlSeconds: o.ttlSeconds, logger: o.logger };
}
