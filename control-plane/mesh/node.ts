/**
 * This peer's place in the mesh: it joins (membership under a lease),
 * campaigns for the scheduler leadership, announces the agents it holds, and
 * routes what the scheduler and API decide to whichever peer holds the agent
 * (this one, through the gateway, or another, through PeerService). On one
 * host with the embedded store it is a mesh of one: the same code path.
 */
import { status as Status } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Assign } from '../../proto/gen/runmesh/v1/agent.js';
import type { Peer } from '../../proto/gen/runmesh/v1/cluster.js';
import type { ReadLogRequest } from '../../proto/gen/runmesh/v1/peer.js';
import type { AgentView } from '../../routing/index.js';
import { agentSeed, fnv1a, rendezvous } from '../../routing/hash.js';
import { ApiError } from '../api/status.js';
import type { AgentPublisher, Gateway } from '../gateway/gateway.js';
import { announcedLoad, type AgentEntry, type AgentRegistry } from '../gateway/registry.js';
import { NotLeaderError } from '../jobs/errors.js';
import { logHolders, type JobRecord } from '../jobs/record.js';
import type { LogStore } from '../logs/log-store.js';
import type { ActiveIndex } from '../scheduler/active-index.js';
import { add } from '../scheduler/convert.js';
import type { AgentSource, Dispatcher } from '../scheduler/scheduler.js';
import type { Compare, Store } from '../store/store.js';
import { AgentDirectory, type AgentRecord } from './agent-directory.js';
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
  /** This peer's log blob directory (copies of other peers' sealed logs land here). */
  logs: LogStore;
  logger: Logger;
}

/** Peers asked in turn to keep a sealed log's second copy. */
const COPY_TRIES = 2;
/** A copy's deadline: this, plus 1 ms per record, up to the max. */
const COPY_TIMEOUT_MS = 5_000;
const COPY_TIMEOUT_MAX_MS = 60_000;
/** A copy syncs what it has written after about this many bytes. */
const COPY_SYNC_BYTES = 4 << 20;

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
    const membership = await PeerMembership.join(o.store, {
      peerId: o.peerId,
      grpcAddress: o.grpcAddress,
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
      load: this.loadOf(r),
      schedulable: !r.cordoned && !r.draining,
    }));
  }

  /** The agent's host load: its latest heartbeat when held here, else as its peer last announced it. */
  loadOf(r: AgentRecord): number {
    const local = this.o.registry.get(r.name);
    return local?.link ? local.load : r.load;
  }

  connected(name: string): boolean {
    return this.directory.get(name) !== undefined;
  }

  /** The gRPC address of the peer holding `agent`, or 'self'. */
  private holder(agent: string): string | undefined {
    const r = this.directory.get(agent);
    if (!r) return undefined;
    if (r.peerId === this.o.peerId) return 'self';
    return this.membership.peer(r.peerId)?.grpcAddress;
  }

  // Dispatcher
  async assign(agent: string, record: JobRecord): Promise<boolean> {
    const timeoutMs = (record.job.spec?.timeoutSeconds ?? 3600) * 1000;
    const msg: Assign = {
      jobId: record.job.id,
      attempt: record.job.attempt,
      spec: record.job.spec,
      deadline: new Date(Date.now() + timeoutMs).toISOString(),
    };
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
    const load = announcedLoad(e.load);
    return this.directory.publish(
      {
        name,
        peerId: this.o.peerId,
        labels,
        capacity,
        version,
        hostname,
        connectedAt: e.connectedAt.toISOString(),
        cordoned,
        draining,
        load,
      },
      this.membership.lease,
    );
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
   * Keeps a second copy of a sealed log held here on another live peer, the
   * one ranked first for this attempt by rendezvous hashing (the next on
   * failure), so losing one peer loses no finished log. Resolves with the
   * peers holding it, this one first; with no other peer (or none answering,
   * which is logged as a warning) that is this one alone.
   */
  async replicateLog(jobId: string, attempt: number, records: number): Promise<string[]> {
    const self = this.o.peerId;
    if (records === 0) return [self];
    const key = fnv1a(`${jobId}/${attempt}`);
    const ranked = this.membership
      .peers()
      .filter((p) => p.id !== self)
      .map((p) => ({ p, w: rendezvous(key, agentSeed(p.id)) }))
      .sort((a, b) => b.w - a.w)
      .slice(0, COPY_TRIES);
    const timeoutMs = Math.min(COPY_TIMEOUT_MAX_MS, COPY_TIMEOUT_MS + records);
    for (const { p } of ranked) {
      try {
        await this.clients.copyLog(p.grpcAddress, { jobId, attempt, sourcePeer: self, records }, timeoutMs);
        return [self, p.id];
      } catch (err) {
        this.o.logger.warn({ err, job_id: jobId, attempt, peer_id: p.id }, 'copying a sealed log to a peer failed');
      }
    }
    // A mesh of one has nowhere to copy to; that is how it runs, not a warning.
    if (ranked.length > 0) this.o.logger.warn({ job_id: jobId, attempt, peers_tried: ranked.length }, 'sealed log kept on this peer only');
    return [self];
  }

  // PeerHandler
  async copyLog(jobId: string, attempt: number, sourcePeer: string, records: number): Promise<number> {
    const address = sourcePeer === this.o.peerId ? undefined : this.membership.peer(sourcePeer)?.grpcAddress;
    if (!address) throw new ApiError(Status.FAILED_PRECONDITION, `source_peer: ${sourcePeer.slice(0, 64)} is not another live peer`);
    const file = await this.o.logs.file(jobId, attempt);
    let unsynced = 0;
    if (file.count < records) {
      for await (const r of this.clients.readLog(address, { jobId, attempt, fromSeq: file.count, follow: false })) {
        file.append(r.seq, r.stream, r.data);
        // Bounded memory for a long log: what is queued is written and synced as it goes.
        if ((unsynced += r.data.byteLength) > COPY_SYNC_BYTES) await file.durable().then(() => (unsynced = 0));
        if (file.count >= records) break;
      }
    }
    const held = await file.durable();
    if (held < records) throw new ApiError(Status.FAILED_PRECONDITION, `records: ${sourcePeer} holds ${held} of the ${records} records`);
    await this.o.logs.seal(jobId, attempt);
    return held;
  }

  /**
   * Where an attempt's log is: the peer holding its agent now (running), or
   * the peers holding its sealed copies (finished); none when no peer does.
   */
  private logPeers(record: JobRecord, attempt: number): string[] {
    const running = record.job.attempt === attempt && !record.job.attempts.at(-1)?.finishedAt;
    if (!running) return logHolders(record, attempt);
    const peer = this.directory.get(record.job.attempts.at(-1)?.agent ?? '')?.peerId;
    return peer ? [peer] : [];
  }

  /** True when the attempt's log is written or kept here, or nowhere known (then here is as good as any). */
  logIsHere(record: JobRecord, attempt: number): boolean {
    const peers = this.logPeers(record, attempt);
    return peers.length === 0 || peers.includes(this.o.peerId);
  }

  /**
   * Reads an attempt's log from the peers that have it (see `logIsHere`). A
   * log none of whose holders is live fails with UNAVAILABLE, the holders
   * named, rather than reading as empty.
   */
  remoteLog(record: JobRecord, attempt: number, fromSeq: number, follow: boolean, signal: AbortSignal): AsyncIterable<LogRecord> {
    const holders = this.logPeers(record, attempt);
    const live = holders.flatMap((id) => this.membership.peer(id)?.grpcAddress ?? []);
    if (live.length === 0)
      throw new ApiError(
        Status.UNAVAILABLE,
        `the log of job ${record.job.id} attempt ${attempt} is held by ${holders.join(', ') || 'no peer'}, none of them live now`,
      );
    return this.readFrom(live, { jobId: record.job.id, attempt, fromSeq, follow }, signal);
  }

  /** Reads from the first holder that answers, going on from the last record yielded when one fails. */
  private async *readFrom(addresses: string[], request: ReadLogRequest, signal: AbortSignal): AsyncGenerator<LogRecord> {
    let fromSeq = request.fromSeq;
    for (let i = 0; ; i++) {
      try {
        for await (const r of this.clients.readLog(addresses[i]!, { ...request, fromSeq }, signal)) {
          fromSeq = r.seq + 1;
          yield r;
        }
        return;
      } catch (err) {
        if (signal.aborted) throw err;
        if (i + 1 >= addresses.length) {
          throw new ApiError(
            Status.UNAVAILABLE,
            `the log of job ${request.jobId} attempt ${request.attempt} could not be read from ${addresses.join(', ')} (${(err as Error).message}); retry`,
          );
        }
        this.o.logger.warn(
          { err, job_id: request.jobId, attempt: request.attempt, address: addresses[i] },
          'reading a log copy failed, trying the next',
        );
      }
    }
  }

  peers(): Peer[] {
    const leader = this.election.leader()?.peerId;
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
    return (this.closing ??= (async () => {
      const steps: Array<() => unknown> = [
        () => this.election.close(),
        () => this.directory.close(),
        () => this.membership.close(),
        () => this.clients.close(),
      ];
      for (const step of steps) {
        try {
          await step();
        } catch (err) {
          this.o.logger.warn({ err }, 'mesh shutdown step failed');
        }
      }
    })());
  }
}
