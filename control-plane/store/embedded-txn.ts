/**
 * How one etcd-shaped transaction is evaluated and applied by the embedded
 * store, against a `BatchView`: the committed lmdb state plus the writes of
 * the transactions ahead of it in the same group commit.
 */
import type { Database } from 'lmdb';
import { StoreError } from './errors.js';
import type { Compare, KeyValue, Op, TxnRequest, WatchEvent } from './store.js';

/** A key's record as lmdb holds it (short field names: it is stored once per key). */
export interface Stored {
  v: string;
  c: number;
  m: number;
  n: number;
  l: number;
}

export function toKeyValue(key: string, s: Stored): KeyValue {
  return { key, value: s.v, createRevision: s.c, modRevision: s.m, version: s.n, lease: s.l };
}

/** Bounds of a scan under a prefix: strictly after / before a key, and its direction. */
export interface ScanBounds {
  after?: string;
  before?: string;
  reverse?: boolean;
}

/** Keys of `db` under `prefix` within `bounds`, in key order (or reverse); stops at the first key past the range. */
export function* keysUnder(db: Database<Stored, string>, prefix: string, bounds: ScanBounds = {}): Generator<string> {
  const { after, before } = bounds;
  const low = after !== undefined && after > prefix ? after : prefix;
  const end = prefixEnd(prefix);
  const high = before !== undefined && (end === undefined || before < end) ? before : end;
  const inRange = (key: string): boolean => key >= low && (after === undefined || key > after) && (high === undefined || key < high);
  if (bounds.reverse) {
    for (const key of db.getKeys(high === undefined ? { reverse: true } : { start: high, reverse: true })) {
      if (high !== undefined && key >= high) continue;
      if (!inRange(key)) return;
      yield key;
    }
    return;
  }
  for (const key of db.getKeys(low === '' ? {} : { start: low })) {
    if (key === after) continue;
    if (!inRange(key)) return;
    yield key;
  }
}

/** The least string above every string starting with `prefix`; undefined when there is none (the empty prefix). */
function prefixEnd(prefix: string): string | undefined {
  for (let i = prefix.length - 1; i >= 0; i--) {
    const c = prefix.charCodeAt(i);
    if (c < 0xffff) return prefix.slice(0, i) + String.fromCharCode(c + 1);
  }
  return undefined;
}

/** Committed state overlaid with the pending writes of one batch (null = deleted). */
export class BatchView {
  readonly writes = new Map<string, Stored | null>();

  constructor(private readonly db: Database<Stored, string>) {}

  get(key: string): Stored | undefined {
    const pending = this.writes.get(key);
    if (pending !== undefined) return pending ?? undefined;
    return this.db.get(key);
  }

  keysUnder(prefix: string): string[] {
    const keys = new Set(keysUnder(this.db, prefix));
    for (const key of this.writes.keys()) if (key.startsWith(prefix)) keys.add(key);
    return [...keys].filter((k) => this.get(k) !== undefined);
  }
}

/** What applying one queued transaction produced. */
export interface Outcome {
  succeeded: boolean;
  /** Changes, all at the transaction's revision; empty when it wrote nothing. */
  events: WatchEvent[];
}

/** Hooks the transaction needs from the store around it. */
export interface ApplyContext {
  leaseExists(id: number): boolean;
  /** Called for every key whose lease changes (0 = none), to keep the lease index. */
  onLeaseChange(key: string, from: number, to: number): void;
}

export function compareHolds(c: Compare, s: Stored | undefined): boolean {
  if (c.target === 'value') {
    // etcd: a value compare on an absent key always fails (no way to tell "" from missing).
    if (s === undefined) return false;
    return holds(Buffer.compare(Buffer.from(s.v), Buffer.from(c.value)), c.op);
  }
  const actual = s === undefined ? 0 : c.target === 'version' ? s.n : c.target === 'modRevision' ? s.m : s.c;
  return holds(Math.sign(actual - c.value), c.op);
}

function holds(sign: number, op: Compare['op']): boolean {
  switch (op) {
    case '==':
      return sign === 0;
    case '!=':
      return sign !== 0;
    case '<':
      return sign < 0;
    case '>':
      return sign > 0;
  }
}

/** Evaluates compares and applies the chosen branch to `view` at `revision`; throws before writing anything. */
export function applyTxn(view: BatchView, req: TxnRequest, revision: number, ctx: ApplyContext): Outcome {
  const succeeded = (req.compare ?? []).every((c) => compareHolds(c, view.get(c.key)));
  const ops = (succeeded ? req.success : req.failure) ?? [];
  for (const op of ops) {
    if (op.type === 'put' && op.lease && !ctx.leaseExists(op.lease)) {
      throw new StoreError(`lease ${op.lease} not found`);
    }
  }
  return { succeeded, events: applyOps(view, ops, revision, ctx) };
}

/** Applies ops in order; events come out sorted by key (stable, so one key's ops keep their order). */
export function applyOps(view: BatchView, ops: readonly Op[], revision: number, ctx: ApplyContext): WatchEvent[] {
  const events: WatchEvent[] = [];
  for (const op of ops) {
    if (op.type === 'put') events.push(put(view, op, revision, ctx));
    else if (op.type === 'delete') remove(view, op.key, revision, ctx, events);
    else for (const key of view.keysUnder(op.prefix)) remove(view, key, revision, ctx, events);
  }
  return events.sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0));
}

const keyOf = (e: WatchEvent): string => (e.type === 'put' ? e.kv.key : e.key);

function put(view: BatchView, { key, value, lease = 0 }: Extract<Op, { type: 'put' }>, revision: number, ctx: ApplyContext): WatchEvent {
  const old = view.get(key);
  const next: Stored = old
    ? { v: value, c: old.c, m: revision, n: old.n + 1, l: lease }
    : { v: value, c: revision, m: revision, n: 1, l: lease };
  view.writes.set(key, next);
  if ((old?.l ?? 0) !== lease) ctx.onLeaseChange(key, old?.l ?? 0, lease);
  return { type: 'put', kv: toKeyValue(key, next), revision };
}

function remove(view: BatchView, key: string, revision: number, ctx: ApplyContext, events: WatchEvent[]): void {
  const old = view.get(key);
  if (old === undefined) return;
  view.writes.set(key, null);
  if (old.l !== 0) ctx.onLeaseChange(key, old.l, 0);
  events.push({ type: 'delete', key, revision });
}
