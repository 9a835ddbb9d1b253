/**
 * Group commit on a real etcd: concurrent fenced writes are merged, yet each
 * caller gets the outcome of its own compares; and the wrapped store still
 * passes the whole store contract.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type TestEtcd } from '../../test/support/etcd.js';
import { storeContract } from './testing/contract.js';
import { openEtcdStore, type EtcdStore } from './etcd.js';
import { withGroupCommit } from './group-commit.js';

let etcd: TestEtcd;
beforeAll(async () => {
  etcd = await startEtcd();
});
afterAll(async () => {
  await etcd?.stop();
});

storeContract('etcd with group commit', async () => {
  const prefix = `/gc-${randomUUID()}/`;
  const opened: EtcdStore[] = [await openEtcdStore({ endpoints: [etcd.endpoint], prefix })];
  const store = withGroupCommit(opened[0]!);
  return {
    store,
    compact: (rev) => opened[0]!.compact(rev),
    restart: async () => {
      await etcd.restart();
      return store;
    },
    reopen: async () => {
      const s = await openEtcdStore({ endpoints: [etcd.endpoint], prefix });
      opened.push(s);
      return withGroupCommit(s);
    },
    cleanup: async () => {
      for (const s of opened) await s.close();
    },
  };
});

describe('group commit', () => {
  it('gives each merged transaction its own outcome', async () => {
    const raw = await openEtcdStore({ endpoints: [etcd.endpoint], prefix: `/gc-${randomUUID()}/` });
    const store = withGroupCommit(raw);
    const n = 300;
    const revs = await Promise.all(Array.from({ length: n }, (_, i) => store.put(`k${i}`, 'v0')));
    // Half the writers hold the right revision, half a stale one.
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        store.txn({
          compare: [{ key: `k${i}`, target: 'modRevision', op: '==', value: i % 2 === 0 ? revs[i]! : revs[i]! - 1 }],
          success: [{ type: 'put', key: `k${i}`, value: 'v1' }],
        }),
      ),
    );
    expect(results.map((r) => r.succeeded)).toEqual(Array.from({ length: n }, (_, i) => i % 2 === 0));
    for (let i = 0; i < n; i += 37) expect((await store.get(`k${i}`))?.value).toBe(i % 2 === 0 ? 'v1' : 'v0');
    // Many writers to one key: exactly one create-if-absent wins.
    const creates = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        store.txn({
          compare: [{ key: 'once', target: 'version', op: '==', value: 0 }],
          success: [{ type: 'put', key: 'once', value: String(i) }],
        }),
      ),
    );
    expect(creates.filter((r) => r.succeeded)).toHaveLength(1);
    await raw.close();
  });
});
