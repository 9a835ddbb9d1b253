/**
 * The store contract: one vitest suite every `Store` implementation passes
 * (embedded.test.ts, etcd.test.ts). It pins down the etcd v3 semantics the
 * rest of runmesh relies on; an implementation-specific quirk belongs in that
 * implementation's own test file, not here.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { collect, retrying, show } from './contract-helpers.js';
import { sleep, waitUntil } from '../../../test/support/wait.js';
import { isCompacted, isStoreUnavailable, StoreError } from '../errors.js';
import type { Store } from '../store.js';

export interface ContractSubject {
  store: Store;
  /** Closes everything the subject opened and removes its data. */
  cleanup(): Promise<void>;
  /** Compacts history up to `rev`, so watching from before it fails. */
  compact?(rev: number): Promise<void>;
  /** Restarts the backing service; returns the store to use afterwards (the same one for etcd). */
  restart?(): Promise<Store>;
  /** Opens another store on the same data (the subject's store may be closed by then). */
  reopen?(): Promise<Store>;
}

export function storeContract(name: string, open: () => Promise<ContractSubject>): void {
  describe(`store contract: ${name}`, () => {
    let subject: ContractSubject;
    let store: Store;

    beforeEach(async () => {
      subject = await open();
      store = subject.store;
    });
    afterEach(async () => {
      await subject.cleanup();
    });

    it('gets, puts and deletes keys', async () => {
      expect(await store.get('a')).toBeUndefined();
      const rev = await store.put('a', 'one');
      expect(await store.get('a')).toEqual({ key: 'a', value: 'one', createRevision: rev, modRevision: rev, version: 1, lease: 0 });
      expect(await store.delete('a')).toBe(true);
      expect(await store.delete('a')).toBe(false);
      expect(await store.get('a')).toBeUndefined();
    });

    it('moves revisions, versions and create revisions as etcd does', async () => {
      const r1 = await store.put('k', '1');
      const r2 = await store.put('k', '2');
      expect(r2).toBeGreaterThan(r1);
      expect(await store.get('k')).toMatchObject({ createRevision: r1, modRevision: r2, version: 2 });
      expect(await store.revision()).toBeGreaterThanOrEqual(r2);
      await store.delete('k');
      const r3 = await store.put('k', '3');
      expect(await store.get('k')).toMatchObject({ createRevision: r3, modRevision: r3, version: 1 });
      const both = await store.txn({
        success: [
          { type: 'put', key: 'x', value: '1' },
          { type: 'put', key: 'y', value: '1' },
        ],
      });
      expect(both.revision).toBe(r3 + 1);
      expect((await store.get('x'))?.modRevision).toBe(both.revision);
      expect((await store.get('y'))?.modRevision).toBe(both.revision);
    });

    it('does not bump the revision for a transaction that writes nothing', async () => {
      const rev = await store.put('k', 'v');
      const r = await store.txn({
        compare: [{ key: 'k', target: 'value', op: '==', value: 'other' }],
        success: [{ type: 'put', key: 'k', value: 'x' }],
      });
      expect(r).toEqual({ succeeded: false, revision: rev });
      expect(await store.delete('absent')).toBe(false);
      expect(await store.revision()).toBe(rev);
    });

    it('ranges by prefix with after/limit paging', async () => {
      for (const k of ['p/a', 'p/b', 'p/c', 'p/d', 'q/a', 'p']) await store.put(k, k);
      const all = await store.range('p/');
      expect(all.kvs.map((kv) => kv.key)).toEqual(['p/a', 'p/b', 'p/c', 'p/d']);
      expect(all.more).toBe(false);
      expect(all.revision).toBe(await store.revision());
      const page1 = await store.range('p/', { limit: 3 });
      expect(page1.kvs.map((kv) => kv.key)).toEqual(['p/a', 'p/b', 'p/c']);
      expect(page1.more).toBe(true);
      const page2 = await store.range('p/', { limit: 3, after: 'p/c' });
      expect(page2.kvs.map((kv) => kv.key)).toEqual(['p/d']);
      expect(page2.more).toBe(false);
      expect((await store.range('p/', { after: 'p/b' })).kvs.map((kv) => kv.key)).toEqual(['p/c', 'p/d']);
      expect((await store.range('p/', { after: 'a' })).kvs).toHaveLength(4);
      expect((await store.range('p/', { limit: 2, after: 'p/d' })).kvs).toEqual([]);
    });

    it('ranges in reverse with before/limit paging, and between after and before', async () => {
      for (const k of ['p/a', 'p/b', 'p/c', 'p/d', 'q/a', 'p', 'o/z']) await store.put(k, k);
      const keys = async (options: Parameters<Store['range']>[1], prefix = 'p/'): Promise<string[]> =>
        (await store.range(prefix, options)).kvs.map((kv) => kv.key);
      expect(await keys({ reverse: true })).toEqual(['p/d', 'p/c', 'p/b', 'p/a']);
      const page1 = await store.range('p/', { reverse: true, limit: 3 });
      expect(page1.kvs.map((kv) => kv.key)).toEqual(['p/d', 'p/c', 'p/b']);
      expect(page1.more).toBe(true);
      const page2 = await store.range('p/', { reverse: true, limit: 3, before: 'p/b' });
      expect(page2.kvs.map((kv) => kv.key)).toEqual(['p/a']);
      expect(page2.more).toBe(false);
      expect(await keys({ reverse: true, before: 'p/c', after: 'p/a' })).toEqual(['p/b']);
      expect(await keys({ before: 'p/c', after: 'p/a' })).toEqual(['p/b']);
      expect(await keys({ before: 'p/c' })).toEqual(['p/a', 'p/b']);
      expect(await keys({ reverse: true, before: 'zz' })).toEqual(['p/d', 'p/c', 'p/b', 'p/a']);
      expect(await keys({ reverse: true, before: 'p/a' })).toEqual([]);
      expect(await keys({ reverse: true, after: 'p/d' })).toEqual([]);
      expect(await keys({ reverse: true, limit: 2 }, '')).toEqual(['q/a', 'p/d']);
    });

    it('counts the keys under a prefix', async () => {
      for (const k of ['p/a', 'p/b', 'p/c', 'q/a', 'p']) await store.put(k, k);
      expect(await store.count('p/')).toBe(3);
      expect(await store.count('q/')).toBe(1);
      expect(await store.count('r/')).toBe(0);
      await store.delete('p/b');
      expect(await store.count('p/')).toBe(2);
    });

    it('creates a key only if absent (version == 0), with success and failure branches', async () => {
      const create = {
        compare: [{ key: 'job', target: 'version', op: '==', value: 0 }] as const,
        success: [{ type: 'put', key: 'job', value: 'first' }] as const,
        failure: [{ type: 'put', key: 'lost', value: 'yes' }] as const,
      };
      expect((await store.txn(create)).succeeded).toBe(true);
      expect((await store.txn({ ...create, success: [{ type: 'put', key: 'job', value: 'second' }] })).succeeded).toBe(false);
      expect((await store.get('job'))?.value).toBe('first');
      expect((await store.get('lost'))?.value).toBe('yes');
    });

    it('compares value, version, modRevision and createRevision', async () => {
      const c = await store.put('k', 'b');
      const m = await store.put('k', 'c');
      const check = async (compare: Parameters<Store['txn']>[0]['compare']): Promise<boolean> => (await store.txn({ compare })).succeeded;
      expect(await check([{ key: 'k', target: 'value', op: '==', value: 'c' }])).toBe(true);
      expect(await check([{ key: 'k', target: 'value', op: '!=', value: 'c' }])).toBe(false);
      expect(await check([{ key: 'k', target: 'value', op: '>', value: 'b' }])).toBe(true);
      expect(await check([{ key: 'k', target: 'value', op: '<', value: 'b' }])).toBe(false);
      expect(await check([{ key: 'k', target: 'version', op: '==', value: 2 }])).toBe(true);
      expect(await check([{ key: 'k', target: 'version', op: '>', value: 2 }])).toBe(false);
      expect(await check([{ key: 'k', target: 'modRevision', op: '==', value: m }])).toBe(true);
      expect(await check([{ key: 'k', target: 'modRevision', op: '<', value: m }])).toBe(false);
      expect(await check([{ key: 'k', target: 'createRevision', op: '==', value: c }])).toBe(true);
      expect(await check([{ key: 'k', target: 'createRevision', op: '!=', value: c }])).toBe(false);
      // All compares must hold.
      expect(
        await check([
          { key: 'k', target: 'version', op: '==', value: 2 },
          { key: 'k', target: 'value', op: '==', value: 'x' },
        ]),
      ).toBe(false);
      // A value compare on an absent key fails whatever the operator; numeric targets read as 0.
      expect(await check([{ key: 'nope', target: 'value', op: '!=', value: 'x' }])).toBe(false);
      expect(await check([{ key: 'nope', target: 'modRevision', op: '==', value: 0 }])).toBe(true);
    });

    it('deletes by prefix inside a transaction', async () => {
      for (const k of ['d/1', 'd/2', 'd/3', 'dx', 'e']) await store.put(k, 'v');
      await store.txn({
        success: [
          { type: 'deletePrefix', prefix: 'd/' },
          { type: 'put', key: 'e', value: 'w' },
        ],
      });
      expect((await store.range('d')).kvs.map((kv) => kv.key)).toEqual(['dx']);
      expect((await store.get('e'))?.value).toBe('w');
    });

    it('accepts a transaction of maxTxnOps puts', async () => {
      const n = Math.min(store.maxTxnOps, 500);
      expect(n).toBeGreaterThan(0);
      const success = Array.from({ length: n }, (_, i) => ({
        type: 'put' as const,
        key: `many/${String(i).padStart(4, '0')}`,
        value: 'v',
      }));
      await store.txn({ success });
      expect((await store.range('many/')).kvs).toHaveLength(n);
    });

    it('deletes a lease’s keys when it is revoked', async () => {
      const lease = await store.grantLease(30);
      await store.put('l/held', 'v', { lease: lease.id });
      await store.txn({ success: [{ type: 'put', key: 'l/txn', value: 'v', lease: lease.id }] });
      await store.put('l/free', 'v');
      expect((await store.get('l/held'))?.lease).toBe(lease.id);
      await lease.revoke();
      await lease.revoke();
      expect((await store.range('l/')).kvs.map((kv) => kv.key)).toEqual(['l/free']);
      await expect(store.put('l/late', 'v', { lease: lease.id })).rejects.toBeInstanceOf(StoreError);
    });

    it('drops a key from its lease when it is put again without one', async () => {
      const lease = await store.grantLease(30);
      await store.put('k', '1', { lease: lease.id });
      await store.put('k', '2');
      await lease.revoke();
      expect(await store.get('k')).toMatchObject({ value: '2', lease: 0 });
    });

    it('deletes leased keys once the holder is gone and the TTL passed', async (ctx) => {
      if (!subject.reopen) return ctx.skip();
      const lease = await store.grantLease(1);
      await store.put('gone', 'v', { lease: lease.id });
      await store.put('kept', 'v');
      await store.close();
      expect(await lease.lost).toBeInstanceOf(Error);
      const fresh = await subject.reopen();
      await waitUntil(async () => (await fresh.get('gone')) === undefined, { what: 'leased key to expire', timeoutMs: 15_000 });
      expect((await fresh.get('kept'))?.value).toBe('v');
    });

    it('watches a prefix: revisions in order, grouped, with deletes', async () => {
      const w = await collect(store, 'w/');
      await store.put('w/a', '1');
      await store.put('other', 'x');
      await store.txn({
        success: [
          { type: 'put', key: 'w/c', value: '3' },
          { type: 'put', key: 'w/b', value: '2' },
          { type: 'put', key: 'other', value: 'y' },
        ],
      });
      await store.delete('w/a');
      await store.txn({ success: [{ type: 'deletePrefix', prefix: 'w/' }] });
      await waitUntil(() => w.groups.length >= 4, { what: 'watch events', timeoutMs: 10_000 });
      expect(w.groups.map(show)).toEqual([['put w/a=1'], ['put w/b=2', 'put w/c=3'], ['del w/a'], ['del w/b', 'del w/c']]);
      const revs = w.groups.map((g) => g[0]?.revision ?? 0);
      expect([...revs].sort((a, b) => a - b)).toEqual(revs);
      for (const g of w.groups) expect(new Set(g.map((e) => e.revision)).size).toBe(1);
      const first = w.groups[0]?.[0];
      expect(first?.type === 'put' && first.kv).toMatchObject({ key: 'w/a', version: 1, modRevision: revs[0] });
      expect(w.errors).toEqual([]);
      await w.watch.close();
    });

    it('replays from a past revision', async () => {
      const start = await store.revision();
      await store.put('h/1', 'a');
      const mid = await store.put('h/2', 'b');
      await store.put('h/3', 'c');
      const all = await collect(store, 'h/', start);
      const later = await collect(store, 'h/', mid);
      await waitUntil(() => all.groups.length >= 3 && later.groups.length >= 1, { what: 'replay', timeoutMs: 10_000 });
      expect(all.groups.map(show)).toEqual([['put h/1=a'], ['put h/2=b'], ['put h/3=c']]);
      expect(later.groups.map(show)).toEqual([['put h/3=c']]);
      await all.watch.close();
      await later.watch.close();
    });

    it('replays a history larger than one gRPC message (8 MB over 80 revisions)', async () => {
      const start = await store.revision();
      const value = 'v'.repeat(2048);
      for (let i = 0; i < 80; i++) {
        await store.txn({ success: Array.from({ length: 50 }, (_, k) => ({ type: 'put' as const, key: `big/${i}/${k}`, value })) });
      }
      const replay = await collect(store, 'big/', start);
      await waitUntil(() => replay.groups.length >= 80 || replay.errors.length > 0, { what: 'replay of 80 revisions', timeoutMs: 20_000 });
      expect(replay.errors).toEqual([]);
      expect(replay.groups.map((g) => g.length)).toEqual(Array.from({ length: 80 }, () => 50));
      await replay.watch.close();
    });

    it('delivers nothing after close', async () => {
      const w = await collect(store, 'c/');
      await store.put('c/1', 'v');
      await waitUntil(() => w.groups.length === 1, { what: 'first event', timeoutMs: 10_000 });
      await w.watch.close();
      await w.watch.close();
      await store.put('c/2', 'v');
      await sleep(200); // deliberate: time for an event, which must not come
      expect(w.groups).toHaveLength(1);
      expect(w.errors).toEqual([]);
    });

    it('fails a watch from a compacted revision with CompactedError', async (ctx) => {
      if (!subject.compact) return ctx.skip();
      const start = await store.put('z/1', 'a');
      await store.put('z/2', 'b');
      const last = await store.put('z/3', 'c');
      await subject.compact(last);
      const w = await collect(store, 'z/', start - 1).catch((err: unknown) => ({ groups: [], errors: [err as Error], watch: undefined }));
      await waitUntil(() => w.errors.length === 1, { what: 'compaction error', timeoutMs: 10_000 });
      expect(isCompacted(w.errors[0])).toBe(true);
      expect(w.groups).toEqual([]);
      await w.watch?.close();
      await store.compact(start); // behind the compaction already: a no-op, not an error
      // The compaction revision itself is kept, as etcd keeps it: a watch from just before it still works.
      const kept = await collect(store, 'z/', last - 1);
      await waitUntil(() => kept.groups.length === 1, { what: 'the event at the compaction revision', timeoutMs: 10_000 });
      expect(kept.groups[0]!.map((e) => (e.type === 'put' ? e.kv.key : e.key))).toEqual(['z/3']);
      expect(kept.errors).toEqual([]);
      await kept.watch.close();
    });

    it('reports a closed store as unavailable', async () => {
      await store.close();
      await store.close();
      await expect(store.get('k')).rejects.toSatisfy(isStoreUnavailable);
    });

    it('keeps data across a restart', async (ctx) => {
      if (!subject.restart) return ctx.skip();
      const rev = await store.put('durable', 'yes');
      await store.txn({ success: [{ type: 'put', key: 'durable/2', value: 'also' }] });
      const after = await subject.restart();
      store = after;
      expect(await retrying(() => after.get('durable'))).toMatchObject({ value: 'yes', createRevision: rev });
      expect((await after.get('durable/2'))?.value).toBe('also');
      const next = await retrying(() => after.put('durable', 'again'));
      expect(next).toBeGreaterThan(rev);
      expect(await after.get('durable')).toMatchObject({ version: 2, createRevision: rev });
    });
  });
}
