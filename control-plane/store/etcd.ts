/**
 * The etcd store: the cluster mode. Raw etcd v3 KV/Lease/Watch calls through
 * etcd3's connection pool (which retries transient failures and reconnects);
 * every key lives under an optional prefix, so several runmesh clusters (or
 * tests) can share one etcd.
 */
import { GRPCOutOfRangeError, Etcd3, type IOptions } from 'etcd3';
import pino from 'pino';
import { EtcdAuthError, isEtcdAuthError, isEtcdTlsError, isStoreUnavailable, StoreError, StoreUnavailableError } from './errors.js';
import { explainRefusal, type EtcdUser } from './etcd-auth.js';
import { Keys, translateError } from './etcd-codec.js';
import { type EtcdLease, grantEtcdLease } from './etcd-lease.js';
import { ETCD_CHANNEL_OPTIONS, EtcdRpc } from './etcd-rpc.js';
import { decodeTxnResponse, encodeTxn } from './etcd-wire.js';
import { EtcdWatch } from './etcd-watch.js';
import {
  checkTlsFiles,
  clientCertificateExpiry,
  diagnoseTls,
  etcd3Credentials,
  onExpiry,
  tlsChannelOptions,
  type EtcdTls,
} from './etcd-tls.js';
import { ETCD3_FAULT_HANDLING, isEtcdUnavailable } from './retry.js';
import type { KeyValue, Lease, RangeOptions, RangeResult, Store, TxnRequest, TxnResult, Watch, WatchHandlers } from './store.js';

export interface EtcdStoreOptions {
  /** Client URLs, e.g. `http://10.0.0.1:2379`; `https://` ones with `tls`. */
  endpoints: string[];
  /** Every key is stored under this prefix (default: none). */
  prefix?: string;
  logger?: pino.Logger;
  /** Deadline of each unary call, so a hung etcd surfaces as StoreUnavailableError (default 10 s). */
  callTimeoutMs?: number;
  /** TLS for both connections (`etcds://`); default none. */
  tls?: EtcdTls;
  /** etcd's own authentication; default none. */
  user?: EtcdUser;
}

/** etcd's default --max-txn-ops. */
export const ETCD_MAX_TXN_OPS = 128;

/**
 * Connects and makes one call, so that a wrong CA, client certificate or
 * password stops the caller here with an error naming it (EtcdTlsError,
 * EtcdAuthError), and an unreachable etcd with StoreUnavailableError.
 */
export async function openEtcdStore(options: EtcdStoreOptions): Promise<EtcdStore> {
  if (options.endpoints.length === 0) throw new StoreError('no etcd endpoints given');
  const log = (options.logger ?? pino({ level: 'silent' })).child({ component: 'store', store: 'etcd' });
  const timeout = options.callTimeoutMs ?? 10_000;
  const { tls, user } = options;
  if (tls) checkTlsFiles(tls);
  const expiry = tls && clientCertificateExpiry(tls);
  const clientOptions: IOptions = {
    hosts: options.endpoints,
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeout }),
    // No circuit breaker, a few quick retries: see retry.ts.
    faultHandling: ETCD3_FAULT_HANDLING,
    grpcOptions: { ...ETCD_CHANNEL_OPTIONS, ...tlsChannelOptions(tls) },
    ...(tls ? { credentials: etcd3Credentials(tls) } : {}),
  };
  const client = new Etcd3(clientOptions);
  const rpc = new EtcdRpc(options.endpoints, timeout, { tls, user });
  rpc.auth?.useWith(client);
  const store = new EtcdStore(client, rpc, new Keys(options.prefix ?? ''), log);
  try {
    await rpc.auth?.current();
    await store.revision();
  } catch (err) {
    await store.close();
    throw await explainOpenFailure(err, options);
  }
  if (expiry) store.watchCertificate(expiry);
  log.info({ endpoints: options.endpoints, prefix: options.prefix ?? '', tls: !!tls, user: user?.name ?? '' }, 'etcd store connected');
  return store;
}

/** The first call's failure, with its cause named when it is TLS or etcd's authentication. */
async function explainOpenFailure(err: unknown, options: EtcdStoreOptions): Promise<unknown> {
  if (isEtcdTlsError(err) || isEtcdAuthError(err)) return err;
  if (options.tls && (isStoreUnavailable(err) || isEtcdUnavailable(err))) {
    const tlsFailure = await diagnoseTls(options.endpoints, options.tls);
    if (tlsFailure) return tlsFailure;
  }
  const explained = explainRefusal(err instanceof StoreError && err.cause ? err.cause : err, options.user?.name);
  return explained instanceof EtcdAuthError ? explained : translateError(err, 'connect');
}

/** An etcd client certificate that expires within this is warned about at start. */
const EXPIRY_WARNING_MS = 7 * 24 * 3600_000;

export class EtcdStore implements Store {
  readonly kind = 'etcd';
  readonly maxTxnOps = ETCD_MAX_TXN_OPS;
  private readonly watches = new Set<EtcdWatch>();
  private readonly leases = new Set<EtcdLease>();
  private closing: Promise<void> | undefined;
  private problem = '';
  private stopExpiryWatch = (): void => undefined;

  /** Use `openEtcdStore`. */
  constructor(
    readonly client: Etcd3,
    private readonly rpc: EtcdRpc,
    private readonly keys: Keys,
    private readonly log: pino.Logger,
  ) {}

  degraded(): string {
    return this.problem;
  }

  /**
   * At the client certificate's expiry: a log line and not ready. Live
   * connections carry on (etcd checks certificates at the handshake only), and
   * whenever one breaks the peer is one that lost etcd; it does not exit.
   */
  watchCertificate(notAfter: Date): void {
    const at = notAfter.toISOString();
    if (notAfter.getTime() - Date.now() < EXPIRY_WARNING_MS) this.log.warn({ not_after: at }, 'etcd client certificate expires soon');
    this.stopExpiryWatch = onExpiry(notAfter, () => {
      this.problem = `the etcd client certificate (--etcd-cert) expired at ${at}; etcd refuses it at the next connection: renew it and restart`;
      this.log.error({ not_after: at }, 'etcd client certificate expired');
    });
  }

  get(key: string): Promise<KeyValue | undefined> {
    return this.call('get', async () => {
      const res = await this.client.kv.range({ key: this.keys.key(key) });
      const kv = res.kvs[0];
      return kv && this.keys.kv(kv);
    });
  }

  range(prefix: string, options: RangeOptions = {}): Promise<RangeResult> {
    return this.call('range', async () => {
      const res = await this.client.kv.range({
        ...this.span(prefix, options.after, options.before),
        limit: options.limit && options.limit > 0 ? options.limit : 0,
        ...(options.reverse ? { sort_order: 'Descend', sort_target: 'Key' } : {}),
      });
      return { kvs: res.kvs.map((kv) => this.keys.kv(kv)), revision: Number(res.header.revision), more: res.more };
    });
  }

  count(prefix: string): Promise<number> {
    return this.call('count', async () => Number((await this.client.kv.range({ ...this.span(prefix), count_only: true })).count));
  }

  /** etcd's key range for the keys under `prefix`, from just after `after` and up to (not including) `before` when given. */
  private span(prefix: string, after?: string, before?: string): { key: Buffer; range_end: Buffer } {
    const first = this.keys.key(prefix);
    const past = after === undefined ? undefined : Buffer.concat([this.keys.key(after), ZERO]);
    const start = past && Buffer.compare(past, first) > 0 ? past : first;
    const end = this.keys.prefixEnd(prefix);
    const upTo = before === undefined ? undefined : this.keys.key(before);
    // range_end `\0` means "to the end of the keyspace", so any real bound is lower.
    const isOpen = end.length === 1 && end[0] === 0;
    const rangeEnd = upTo && (isOpen || Buffer.compare(upTo, end) < 0) ? upTo : end;
    return { key: start.length > 0 ? start : ZERO, range_end: rangeEnd };
  }

  put(key: string, value: string, options: { lease?: number } = {}): Promise<number> {
    return this.call('put', async () => {
      const res = await this.client.kv.put({ key: this.keys.key(key), value: Buffer.from(value), lease: options.lease ?? 0 });
      return Number(res.header.revision);
    });
  }

  delete(key: string): Promise<boolean> {
    return this.call('delete', async () => {
      const res = await this.client.kv.deleteRange({ key: this.keys.key(key) });
      return Number(res.deleted) > 0;
    });
  }

  /** The hot path (every job transition): our own wire encoding, see `etcd-wire.ts`. */
  txn(request: TxnRequest): Promise<TxnResult> {
    return this.call('txn', () =>
      this.rpc.unary(
        '/etcdserverpb.KV/Txn',
        encodeTxn(request, this.keys.prefix, (p) => this.keys.prefixEnd(p)),
        decodeTxnResponse,
      ),
    );
  }

  grantLease(ttlSeconds: number): Promise<Lease> {
    return this.call('lease grant', async () => {
      const lease = await grantEtcdLease(this.client.leaseClient, ttlSeconds, this.log);
      this.leases.add(lease);
      void lease.lost.then(() => this.leases.delete(lease));
      return wrapRevoke(lease, () => this.leases.delete(lease));
    });
  }

  watch(prefix: string, handlers: WatchHandlers, fromRevision?: number): Promise<Watch> {
    return this.call('watch', async () => {
      const from = fromRevision ?? (await this.revision());
      const context = {
        client: this.client.watchClient,
        keys: this.keys,
        log: this.log,
        onEnd: (x: EtcdWatch) => this.watches.delete(x),
        renewAuth: () => this.rpc.auth?.forget(),
      };
      const w = new EtcdWatch(context, { prefix, handlers, from: from + 1 });
      this.watches.add(w);
      await w.start();
      return w;
    });
  }

  revision(): Promise<number> {
    return this.call('revision', async () => {
      const res = await this.client.kv.range({ key: this.keys.key(REVISION_PROBE), count_only: true, limit: 1 });
      return Number(res.header.revision);
    });
  }

  /** Compacts etcd's history up to `revision` (the whole etcd, not just our prefix). */
  async compact(revision: number): Promise<void> {
    try {
      await this.call('compact', () => this.client.kv.compact({ revision, physical: true }));
    } catch (err) {
      // Compacted past it already (etcd's auto-compaction, an operator): nothing is left to drop.
      if (err instanceof StoreError && err.cause instanceof GRPCOutOfRangeError && /has been compacted/.test(err.cause.message)) return;
      throw err;
    }
  }

  /** Stops watches and keepalives (leases then expire after their TTL), then the connection. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const closed = new StoreUnavailableError('store closed');
    this.stopExpiryWatch();
    for (const w of [...this.watches]) w.fail(closed);
    for (const lease of [...this.leases]) lease.release();
    try {
      this.rpc.close();
      this.client.close();
    } catch (err) {
      this.log.warn({ err }, 'etcd client close failed');
    }
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.closing) throw new StoreUnavailableError('store closed');
    const started = Date.now();
    let result: T;
    try {
      result = await fn();
    } catch (err) {
      throw translateError(err, what);
    }
    const took = Date.now() - started;
    // Every job transition waits on these: a slow etcd (disk, elections, overload) is what an operator must see.
    // A failed request is its caller's to report; a compaction of a long history may take its time.
    if (took >= SLOW_REQUEST_MS && what !== 'watch' && what !== 'compact') this.log.warn({ op: what, took_ms: took }, 'etcd request slow');
    return result;
  }
}

const ZERO = Buffer.from([0]);
/**
 * The key `revision()` counts (reading no value) to learn etcd's revision: one
 * inside runmesh's keys, which an etcd role limited to them may read.
 */
const REVISION_PROBE = '/runmesh/';
/** An etcd request taking this long is logged (etcd itself warns past 100 ms of apply). */
const SLOW_REQUEST_MS = 1000;

/** Forgets the lease in the store's set once it is revoked, so close() does not report it lost. */
function wrapRevoke(lease: EtcdLease, forget: () => void): Lease {
  return {
    id: lease.id,
    lost: lease.lost,
    get renewedAt() {
      return lease.renewedAt;
    },
    revoke: () => lease.revoke().finally(forget),
  };
}
