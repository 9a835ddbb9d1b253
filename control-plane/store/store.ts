/**
 * The store: one small etcd-shaped key-value interface with two implementations
 * (embedded lmdb on one host, etcd for a cluster) that pass one contract suite
 * (`contract.ts`). Keys and values are strings; values are usually JSON.
 *
 * Semantics follow etcd v3:
 * - every write bumps a store-wide `revision`; each key carries `createRevision`,
 *   `modRevision` and `version` (number of writes since creation);
 * - a transaction evaluates all `compare`s atomically and applies `success` or
 *   `failure` ops; it gets one new revision if it writes anything;
 * - a key put with a `lease` is deleted when the lease expires or is revoked;
 * - `watch` delivers every change under a prefix in revision order, starting
 *   after `fromRevision` when given; if that revision was compacted the watch
 *   fails with a `CompactedError` and the caller re-reads and re-watches.
 */
export interface KeyValue {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
  version: number;
  /** 0 when the key has no lease. */
  lease: number;
}

export type Compare =
  | { key: string; target: 'value'; op: CompareOp; value: string }
  | { key: string; target: 'version' | 'modRevision' | 'createRevision'; op: CompareOp; value: number };

export type CompareOp = '==' | '!=' | '<' | '>';

export type Op =
  { type: 'put'; key: string; value: string; lease?: number } | { type: 'delete'; key: string } | { type: 'deletePrefix'; prefix: string };

export interface TxnRequest {
  compare?: readonly Compare[];
  success?: readonly Op[];
  failure?: readonly Op[];
}

export interface TxnResult {
  succeeded: boolean;
  /** The store revision after the transaction. */
  revision: number;
}

export interface RangeOptions {
  /** Keys strictly greater than this (for paging forward). */
  after?: string;
  /** Keys strictly less than this (for paging in reverse). */
  before?: string;
  /** Highest key first; `limit` then keeps the highest keys. */
  reverse?: boolean;
  limit?: number;
}

export interface RangeResult {
  kvs: KeyValue[];
  /** Store revision the read was served at; watch from here to miss nothing. */
  revision: number;
  more: boolean;
}

export type WatchEvent = { type: 'put'; kv: KeyValue; revision: number } | { type: 'delete'; key: string; revision: number };

export interface Watch {
  /** Stops the watch; idempotent. */
  close(): Promise<void>;
}

export interface WatchHandlers {
  /** Events of one revision arrive together, in key order. */
  onEvents(events: WatchEvent[]): void;
  /** The watch ended for good (compaction, store closed). Not called after close(). */
  onError(err: Error): void;
}

export interface Lease {
  readonly id: number;
  /**
   * Fires once when the lease is lost against the holder's will: expired, revoked
   * by someone else, keepalive failed, or the store was closed (a `LeaseLostError`).
   * Not fired by this handle's own `revoke()`.
   */
  readonly lost: Promise<Error>;
  /**
   * `performance.now()` when the newest grant or keepalive that the store confirmed
   * was sent. The store counts the TTL from no earlier than that, so the lease is
   * surely alive until `renewedAt + ttl` (less a margin for clock rate drift):
   * what a leader checks before acting. Absent where a lease cannot expire behind
   * its holder's back (the embedded store lives and pauses with its holder).
   */
  readonly renewedAt?: number;
  /** Revokes the lease and deletes its keys; idempotent. */
  revoke(): Promise<void>;
}

export interface Store {
  readonly kind: 'embedded' | 'etcd';
  /** Most ops one txn may carry (etcd's --max-txn-ops, 128 by default); batchers split on it. */
  readonly maxTxnOps: number;
  get(key: string): Promise<KeyValue | undefined>;
  range(prefix: string, options?: RangeOptions): Promise<RangeResult>;
  /** How many keys are under `prefix`, without reading them. */
  count(prefix: string): Promise<number>;
  put(key: string, value: string, options?: { lease?: number }): Promise<number>;
  delete(key: string): Promise<boolean>;
  txn(request: TxnRequest): Promise<TxnResult>;
  /** Grants a lease kept alive in the background until revoked or lost. */
  grantLease(ttlSeconds: number): Promise<Lease>;
  /** Watches a prefix; events after `fromRevision` (default: now). */
  watch(prefix: string, handlers: WatchHandlers, fromRevision?: number): Promise<Watch>;
  /** Current store revision. */
  revision(): Promise<number>;
  /**
   * Why the store should not be relied on though it still answers (an etcd
   * client certificate past its expiry, which etcd refuses at the next
   * connection), or '' when nothing is wrong. /readyz is not ready while set.
   */
  degraded(): string;
  /**
   * Drops history up to `revision`: watching from before it then fails with
   * `CompactedError`. On etcd that is the whole etcd's MVCC history, not just
   * our prefix; the embedded store forgets its in-memory watch history. A
   * revision at or before an earlier compaction is a no-op.
   */
  compact(revision: number): Promise<void>;
  /** Idempotent. */
  close(): Promise<void>;
}
