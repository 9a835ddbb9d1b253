/**
 * Peer membership: each control-plane peer registers itself under a lease at
 * `/runmesh/peers/<peerId>` and watches that prefix to know the others. A peer
 * that dies stops renewing its lease, and etcd deletes its key after the TTL:
 * the survivors see it leave without anyone having to notice the death.
 */
import pino, { type Logger } from 'pino';
import { VERSION } from '../../proto/version.js';
import type { KeyValue, Lease, Store } from '../store/store.js';
import { PEERS_PREFIX, peerKey } from './keys.js';
import { parseRecord, WatchedPrefix } from './watched-prefix.js';

/** What a peer publishes about itself. */
export interface PeerInfo {
  id: string;
  /** Where other peers (and clients) reach its gRPC server, `host:port`. */
  grpcAddress: string;
  /**
   * Where other peers call its PeerService: its `--peer-listen` address, else
   * `grpcAddress` (also for a record written before this field existed).
   */
  peerAddress: string;
  /** Its HTTP server (metrics, websocket tunnel, page), `host:port`. */
  httpAddress: string;
  /** ISO time the peer joined. */
  startedAt: string;
  version: string;
}

export interface JoinOptions {
  peerId: string;
  grpcAddress: string;
  /** Where PeerService is served, when not on `grpcAddress`. */
  peerAddress?: string;
  httpAddress: string;
  /** Lease TTL: how long a dead peer still looks alive (default 5 s). */
  ttlSeconds?: number;
  /** Published version (default: the package version). */
  version?: string;
  logger?: Logger;
}

export const DEFAULT_PEER_TTL_SECONDS = 5;

export class PeerMembership {
  private closing: Promise<void> | undefined;

  private constructor(
    /** This peer, as published. */
    readonly self: PeerInfo,
    /** The peer's lease: keys that must die with the peer (agent sessions, leadership) hang on it. */
    readonly lease: Lease,
    readonly ttlSeconds: number,
    private readonly view: WatchedPrefix<PeerInfo>,
    private readonly log: Logger,
  ) {}

  /**
   * Grants the peer's lease, publishes this peer on it and starts watching the
   * others. If anything fails, the lease is revoked and the error thrown.
   */
  static async join(store: Store, options: JoinOptions): Promise<PeerMembership> {
    const ttlSeconds = options.ttlSeconds ?? DEFAULT_PEER_TTL_SECONDS;
    const log = (options.logger ?? pino({ level: 'silent' })).child({ component: 'membership', peer_id: options.peerId });
    const self: PeerInfo = {
      id: options.peerId,
      grpcAddress: options.grpcAddress,
      peerAddress: options.peerAddress ?? options.grpcAddress,
      httpAddress: options.httpAddress,
      startedAt: new Date().toISOString(),
      version: options.version ?? VERSION,
    };
    const lease = await store.grantLease(ttlSeconds);
    try {
      await store.put(peerKey(self.id), JSON.stringify(self), { lease: lease.id });
      const view = await WatchedPrefix.open({ store, prefix: PEERS_PREFIX, parse: (kv) => parsePeer(kv, log), logger: log });
      const membership = new PeerMembership(self, lease, ttlSeconds, view, log);
      void lease.lost.then((err) => log.error({ err }, 'peer lease lost; this peer must stop acting'));
      log.info(
        { grpc: self.grpcAddress, peer: self.peerAddress, http: self.httpAddress, ttl_seconds: ttlSeconds, lease: lease.id },
        'peer joined',
      );
      return membership;
    } catch (err) {
      await lease.revoke().catch((revokeErr: unknown) => log.warn({ err: revokeErr }, 'lease revoke after failed join failed'));
      throw err;
    }
  }

  /**
   * Fires once when the lease is lost against this peer's will (expired, store
   * gone). From then on the peer is not a member: its agents' sessions and any
   * leadership are gone, so it must stop acting; the caller exits or rejoins.
   */
  get lost(): Promise<Error> {
    return this.lease.lost;
  }

  /** Every live peer (this one included), by id. */
  peers(): PeerInfo[] {
    return this.view.entriesInOrder().map((e) => e.value);
  }

  peer(id: string): PeerInfo | undefined {
    return this.view.get(peerKey(id))?.value;
  }

  /** Calls `listener` with the new peer list whenever it changes; returns the unsubscribe. */
  onChange(listener: (peers: PeerInfo[]) => void): () => void {
    return this.view.onChange(() => listener(this.peers()));
  }

  /** Stops watching and revokes the lease (which deletes every key on it). Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    await this.view.close().catch((err: unknown) => this.log.warn({ err }, 'peer watch close failed'));
    try {
      await this.lease.revoke();
      this.log.info('peer left');
    } catch (err) {
      // The lease then expires after its TTL; the peer is gone either way.
      this.log.warn({ err }, 'peer lease revoke failed');
    }
  }
}

function parsePeer(kv: KeyValue, log: Logger): PeerInfo | undefined {
  return parseRecord<PeerInfo, 'id' | 'grpcAddress', PeerInfo>(kv, log, { what: 'peer', required: ['id', 'grpcAddress'] }, (v) => ({
    id: v.id,
    grpcAddress: v.grpcAddress,
    peerAddress: v.peerAddress || v.grpcAddress,
    httpAddress: v.httpAddress ?? '',
    startedAt: v.startedAt ?? '',
    version: v.version ?? '',
  }));
}
