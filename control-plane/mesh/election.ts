/**
 * Scheduler leader election on the store.
 *
 * A peer campaigns by creating `/runmesh/leader` on its lease, only if the key
 * does not exist. The winner's **term** is that key's createRevision: it grows
 * with every new leadership, and the leader adds `leaderFence(term)` to every
 * scheduling write, so a deposed leader (paused, partitioned, slow) cannot
 * write once someone else holds the key. The others watch the key and
 * campaign again when it goes away (lease expiry, resign).
 *
 * Holding the key is not enough to act: `isLeader()` also needs the lease to
 * be provably alive right now (see `LeaseValidity`), so a process resumed
 * after a pause longer than the TTL stops acting before it has heard a word
 * from etcd.
 */
import pino, { type Logger } from 'pino';
import { Backoff } from '../../transport/retry.js';
import { CAMPAIGN_RETRY } from '../store/retry.js';
import type { Compare, KeyValue, Lease, Store } from '../store/store.js';
import { LEADER_KEY } from './keys.js';
import { LeaseValidity } from './lease-validity.js';
import { parseRecord, WatchedPrefix } from './watched-prefix.js';

export interface LeaderInfo {
  peerId: string;
  grpcAddress: string;
}

export interface ElectionState {
  /** Whoever holds the key, as this peer last saw it. */
  leader: LeaderInfo | undefined;
  /** The holder's term (createRevision of the key). */
  term: number | undefined;
  /** `isLeader()` at the time of the change. */
  isLeader: boolean;
}

export interface ElectionOptions {
  peerId: string;
  grpcAddress: string;
  /** The peer's lease (`PeerMembership.lease`): leadership dies with the peer. */
  lease: Lease;
  /** The lease's TTL. */
  ttlSeconds: number;
  /** Safety margin taken off the lease's provable life (default ttl/4, at most 1 s). */
  marginMs?: number;
  logger?: Logger;
}

/** A compare that holds only while the leadership of `term` lasts; add it to every leader-only write. */
export function leaderFence(term: number): Compare {
  return { key: LEADER_KEY, target: 'createRevision', op: '==', value: term };
}

interface Holder extends LeaderInfo {
  term: number;
  lease: number;
}

export class LeaderElection {
  private readonly listeners = new Set<(state: ElectionState) => void>();
  private readonly validity: LeaseValidity;
  private campaigning = false;
  private leaseLost = false;
  private closed = false;
  private inFlight: Promise<void> | undefined;
  private again = false;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Waits after a failed campaign (store/retry.ts's CAMPAIGN_RETRY). */
  private readonly retry = new Backoff(CAMPAIGN_RETRY);
  private lastState: ElectionState = { leader: undefined, term: undefined, isLeader: false };
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly store: Store,
    private readonly o: Required<Omit<ElectionOptions, 'logger'>>,
    private readonly view: WatchedPrefix<Holder>,
    private readonly log: Logger,
  ) {
    this.validity = new LeaseValidity(o.lease, o.ttlSeconds * 1000, o.marginMs, () => this.changed());
    view.onChange(() => this.changed());
    void o.lease.lost.then(() => {
      // Without the lease there is nothing to campaign with; the caller rejoins with a new one.
      this.leaseLost = true;
      this.campaigning = false;
      this.changed();
    });
  }

  /** Starts watching the leader key and campaigning. */
  static async start(store: Store, options: ElectionOptions): Promise<LeaderElection> {
    const log = (options.logger ?? pino({ level: 'silent' })).child({ component: 'election', peer_id: options.peerId });
    const resolved = { ...options, marginMs: options.marginMs ?? Math.min(1000, options.ttlSeconds * 250) };
    const view = await WatchedPrefix.open({ store, prefix: LEADER_KEY, parse: (kv) => parseHolder(kv, log), logger: log });
    const election = new LeaderElection(store, resolved, view, log);
    election.validity.watch();
    election.campaign();
    return election;
  }

  /** True only while this peer holds the key and can prove its lease is alive. Check before acting. */
  isLeader(): boolean {
    return !this.closed && this.mine() !== undefined && this.validity.valid();
  }

  /** The current leader as last seen, or undefined while there is none. */
  leader(): LeaderInfo | undefined {
    const h = this.holder();
    return h && { peerId: h.peerId, grpcAddress: h.grpcAddress };
  }

  /** This peer's term while it holds the key (even if `isLeader()` is momentarily false); else undefined. */
  get term(): number | undefined {
    return this.mine()?.term;
  }

  /** Calls `listener` when the leader, the term or `isLeader()` changes; returns the unsubscribe. */
  onChange(listener: (state: ElectionState) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  /** Campaigns now and whenever the key is free; idempotent. `start` calls it; call it again after `resign`. */
  campaign(): void {
    if (this.closed || this.leaseLost) return;
    this.campaigning = true;
    this.kick();
  }

  /** Stops campaigning and gives up the leadership if this peer holds it. */
  async resign(): Promise<void> {
    this.campaigning = false;
    clearTimeout(this.retryTimer);
    await this.inFlight;
    const mine = this.mine();
    if (!mine) return;
    const res = await this.store.txn({ compare: [leaderFence(mine.term)], success: [{ type: 'delete', key: LEADER_KEY }] });
    if (res.succeeded) this.log.info({ term: mine.term }, 'leadership resigned');
  }

  /** Resigns, stops watching; leaves the lease alone (membership owns it). Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    await this.resign().catch((err: unknown) => this.log.warn({ err }, 'resign on close failed'));
    this.closed = true;
    this.validity.stop();
    this.listeners.clear();
    await this.view.close().catch((err: unknown) => this.log.warn({ err }, 'leader watch close failed'));
  }

  private holder(): Holder | undefined {
    return this.view.get(LEADER_KEY)?.value;
  }

  private mine(): Holder | undefined {
    const h = this.holder();
    return h?.lease === this.o.lease.id ? h : undefined;
  }

  private changed(): void {
    if (this.closed) return;
    if (!this.holder()) this.kick();
    const h = this.holder();
    const state: ElectionState = { leader: this.leader(), term: h?.term, isLeader: this.isLeader() };
    const last = this.lastState;
    if (state.leader?.peerId === last.leader?.peerId && state.term === last.term && state.isLeader === last.isLeader) return;
    this.lastState = state;
    if (state.isLeader !== last.isLeader) {
      this.log.info({ term: state.term, leader: state.leader?.peerId }, state.isLeader ? 'leadership acquired' : 'leadership lost');
    }
    for (const listener of [...this.listeners]) {
      try {
        listener(state);
      } catch (err) {
        this.log.error({ err }, 'election listener threw');
      }
    }
  }

  private kick(): void {
    if (this.closed || !this.campaigning) return;
    if (this.inFlight) {
      this.again = true;
      return;
    }
    this.inFlight = this.rounds().finally(() => (this.inFlight = undefined));
  }

  private async rounds(): Promise<void> {
    do {
      this.again = false;
      try {
        await this.campaignOnce();
      } catch (err) {
        const wait = this.retry.next();
        this.log.warn({ err, retry_ms: wait }, 'campaign failed');
        this.retryTimer = setTimeout(() => this.kick(), wait);
        this.retryTimer.unref();
        return;
      }
    } while (this.again && !this.closed);
  }

  /** One look at the key: take it if free, clear it if an earlier run of this peer left it behind. */
  private async campaignOnce(): Promise<void> {
    if (this.closed || !this.campaigning) return;
    const current = this.holder();
    if (current && current.peerId === this.o.peerId && current.lease !== this.o.lease.id) {
      // An earlier run of this peer id died holding the key; do not wait out its TTL.
      await this.store.txn({ compare: [leaderFence(current.term)], success: [{ type: 'delete', key: LEADER_KEY }] });
      this.log.info({ term: current.term }, 'stale leadership of an earlier run removed');
      return;
    }
    if (current) return;
    const value = JSON.stringify({ peerId: this.o.peerId, grpcAddress: this.o.grpcAddress } satisfies LeaderInfo);
    const res = await this.store.txn({
      compare: [{ key: LEADER_KEY, target: 'version', op: '==', value: 0 }],
      success: [{ type: 'put', key: LEADER_KEY, value, lease: this.o.lease.id }],
    });
    if (res.succeeded) this.log.info({ term: res.revision }, 'campaign won');
  }
}

function parseHolder(kv: KeyValue, log: Logger): Holder | undefined {
  if (kv.key !== LEADER_KEY) return undefined;
  return parseRecord<LeaderInfo, 'peerId' | 'grpcAddress', Holder>(
    kv,
    log,
    { what: 'leader', required: ['peerId', 'grpcAddress'] },
    (v) => ({
      peerId: v.peerId,
      grpcAddress: v.grpcAddress,
      term: kv.createRevision,
      lease: kv.lease,
    }),
  );
}
