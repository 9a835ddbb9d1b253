/**
 * The embedded store: etcd v3 semantics on lmdb, for one host and one process
 * (`runmesh dev`, single-peer servers). Data survives restarts; leases and
 * watch history do not (they describe the live process).
 */
import { open, type Database, type RootDatabase } from 'lmdb';
import pino from 'pino';
import type { CommitObserver } from './commit-observer.js';
import { CommitQueue, META_REVISION, type Apply, type Committed } from './embedded-commit.js';
import { LeaseTable } from './embedded-leases.js';
import { applyOps, applyTxn, keysUnder, toKeyValue, type BatchView, type Stored } from './embedded-txn.js';
import { WatchHub } from './embedded-watch.js';
import { StoreError, StoreUnavailableError } from './errors.js';
import type { KeyValue, Lease, RangeOptions, RangeResult, Store, TxnRequest, TxnResult, Watch, WatchHandlers } from './store.js';

export interface EmbeddedStoreOptions {
  /** Directory holding the lmdb files; created if missing. */
  dir: string;
  logger?: pino.Logger;
  /** Told of each commit (default: nobody). */
  onCommit?: CommitObserver;
}

const META_COMPACT = 'compactRevision';
export const EMBEDDED_MAX_TXN_OPS = 10_000;

export async function openEmbeddedStore(options: EmbeddedStoreOptions): Promise<EmbeddedStore> {
  const log = (options.logger ?? pino({ level: 'silent' })).child({ component: 'store', store: 'embedded' });
  const root = open({ path: options.dir, maxDbs: 8 });
  const dbs = {
    root,
    kv: root.openDB<Stored, string>({ name: 'kv' }),
    meta: root.openDB<number, string>({ name: 'meta' }),
    leased: root.openDB<number, string>({ name: 'leased' }),
  };
  const store = new EmbeddedStore(dbs, log, options.onCommit);
  await store.sweepLeasedKeys();
  return store;
}

export class EmbeddedStore implements Store {
  readonly kind = 'embedded';
  readonly maxTxnOps = EMBEDDED_MAX_TXN_OPS;
  private readonly commits: CommitQueue;
  private readonly hub: WatchHub;
  private readonly leases = new LeaseTable();
  private closing: Promise<void> | undefined;

  /** Use `openEmbeddedStore`. */
  constructor(
    private readonly dbs: {
      root: RootDatabase;
      kv: Database<Stored, string>;
      meta: Database<number, string>;
      leased: Database<number, string>;
    },
    private readonly log: pino.Logger,
    onCommit?: CommitObserver,
  ) {
    const revision = dbs.meta.get(META_REVISION) ?? 0;
    const compacted = dbs.meta.get(META_COMPACT) ?? 0;
    // History is in memory only: after a restart nothing before `revision` can be replayed.
    this.hub = new WatchHub(Math.max(revision, compacted), log);
    this.commits = new CommitQueue(dbs, revision, (rev, events) => this.hub.publish(rev, events), log, onCommit);
  }

  get(key: string): Promise<KeyValue | undefined> {
    return this.guard(() => {
      const s = this.dbs.kv.get(key);
      return s && toKeyValue(key, s);
    });
  }

  range(prefix: string, options: RangeOptions = {}): Promise<RangeResult> {
    return this.guard(() => {
      const limit = options.limit && options.limit > 0 ? options.limit : Infinity;
      const revision = this.commits.current;
      const kvs: KeyValue[] = [];
      let more = false;
      for (const key of keysUnder(this.dbs.kv, prefix, options)) {
        if (kvs.length >= limit) {
          more = true;
          break;
        }
        const s = this.dbs.kv.get(key);
        if (s) kvs.push(toKeyValue(key, s));
      }
      return { kvs, revision, more };
    });
  }

  count(prefix: string): Promise<number> {
    return this.guard(() => {
      let n = 0;
      for (const _ of keysUnder(this.dbs.kv, prefix)) n++;
      return n;
    });
  }

  async put(key: string, value: string, options: { lease?: number } = {}): Promise<number> {
    const r = await this.txn({ success: [{ type: 'put', key, value, lease: options.lease ?? 0 }] });
    return r.revision;
  }

  async delete(key: string): Promise<boolean> {
    const before = await this.enqueue((view, rev) => applyTxn(view, { success: [{ type: 'delete', key }] }, rev, this.ctx));
    return before.events.length > 0;
  }

  async txn(request: TxnRequest): Promise<TxnResult> {
    const n = Math.max(request.success?.length ?? 0, request.failure?.length ?? 0, request.compare?.length ?? 0);
    if (n > this.maxTxnOps) throw new StoreError(`txn has ${n} ops, more than ${this.maxTxnOps}`);
    const c = await this.enqueue((view, rev) => applyTxn(view, request, rev, this.ctx));
    return { succeeded: c.succeeded, revision: c.revision };
  }

  async grantLease(ttlSeconds: number): Promise<Lease> {
    this.ensureOpen();
    if (!(ttlSeconds >= 1)) throw new StoreError(`lease TTL must be at least 1 second, got ${ttlSeconds}`);
    return this.leases.grant((id) => this.revoke(id));
  }

  async watch(prefix: string, handlers: WatchHandlers, fromRevision?: number): Promise<Watch> {
    this.ensureOpen();
    return this.hub.subscribe(prefix, handlers, fromRevision ?? this.commits.current);
  }

  async revision(): Promise<number> {
    this.ensureOpen();
    return this.commits.current;
  }

  /** Nothing of a local directory expires. */
  degraded(): string {
    return '';
  }

  /** Forgets watch history up to `revision`, as etcd's compaction does (there is no other history to drop). */
  async compact(revision: number): Promise<void> {
    this.ensureOpen();
    this.hub.compact(Math.min(revision, this.commits.current));
    await this.dbs.meta.put(META_COMPACT, this.hub.compactRevision);
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  /** Deletes keys whose lease died with the previous process, in one transaction. */
  async sweepLeasedKeys(): Promise<void> {
    const keys = [...this.dbs.leased.getKeys()];
    if (keys.length === 0) return;
    const c = await this.enqueue(this.deleteKeys(() => keys));
    this.log.info({ keys: keys.length, revision: c.revision }, 'deleted keys of leases from the previous run');
  }

  private async shutdown(): Promise<void> {
    // Stop intake first (ensureOpen sees `closing`), let queued commits land, then drop the rest.
    const steps: Array<() => unknown> = [
      () => this.commits.idle(),
      () => this.leases.loseAll(),
      () => this.hub.closeAll(new StoreUnavailableError('store closed')),
      () => this.dbs.root.close(),
    ];
    for (const step of steps) {
      try {
        await step();
      } catch (err) {
        this.log.warn({ err }, 'store close step failed');
      }
    }
  }

  private revoke(id: number): Promise<void> {
    if (this.closing) return Promise.resolve();
    const apply = this.deleteKeys((view) => {
      const keys = this.leases.keysOf(id).filter((k) => view.get(k)?.l === id);
      this.leases.forget(id);
      return keys;
    });
    return this.enqueue(apply).then(() => undefined);
  }

  private readonly ctx = {
    leaseExists: (id: number) => this.leases.has(id),
    onLeaseChange: (key: string, from: number, to: number) => this.leases.move(key, from, to),
  };

  private enqueue(apply: Apply): Promise<Committed> {
    this.ensureOpen();
    return this.commits.enqueue(apply);
  }

  private deleteKeys(keys: (view: BatchView) => string[]): Apply {
    return (view, rev) => ({
      succeeded: true,
      events: applyOps(
        view,
        keys(view).map((key) => ({ type: 'delete', key }) as const),
        rev,
        this.ctx,
      ),
    });
  }

  private ensureOpen(): void {
    if (this.closing) throw new StoreUnavailableError('store closed');
  }

  private async guard<T>(read: () => T): Promise<T> {
    this.ensureOpen();
    return read();
  }
}
