import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type TestEtcd } from '../../test/support/etcd.js';
import { storeContract } from './testing/contract.js';
import { collect, retrying, show } from './testing/contract-helpers.js';
import { isStoreUnavailable } from './errors.js';
import { openEtcdStore, type EtcdStore } from './etcd.js';
import { waitUntil } from '../../test/support/wait.js';

let etcd: TestEtcd;
beforeAll(async () => {
  etcd = await startEtcd();
});
afterAll(async () => {
  await etcd?.stop();
});

/** Each open gets its own prefix, so tests sharing the etcd do not see each other. */
async function openPrefixed(prefix = `/t-${randomUUID()}/`): Promise<{ store: EtcdStore; prefix: string }> {
  return { store: await openEtcdStore({ endpoints: [etcd.endpoint], prefix }), prefix };
}

storeContract('etcd', async () => {
  const { store, prefix } = await openPrefixed();
  const opened: EtcdStore[] = [store];
  return {
    store,
    compact: (rev) => store.compact(rev),
    restart: async () => {
      await etcd.restart();
      return store;
    },
    reopen: async () => {
      const s = (await openPrefixed(prefix)).store;
      opened.push(s);
      return s;
    },
    cleanup: async () => {
      for (const s of opened) await s.close();
    },
  };
});

describe('etcd store', () => {
  it('keeps keys under its prefix', async () => {
    const a = await openPrefixed();
    const raw = await openEtcdStore({ endpoints: [etcd.endpoint] });
    try {
      await a.store.put('k', 'v');
      expect((await raw.get(`${a.prefix}k`))?.value).toBe('v');
      expect((await a.store.range('')).kvs.map((kv) => kv.key)).toEqual(['k']);
    } finally {
      await a.store.close();
      await raw.close();
    }
  });

  it('reports a dead etcd as unavailable, then recovers and resumes watches without gaps', async () => {
    const { store } = await openPrefixed();
    try {
      const w = await collect(store, 'r/');
      await store.put('r/before', '1');
      await waitUntil(() => w.groups.length === 1, { what: 'the first event' });
      etcd.kill('SIGKILL');
      await expect(
        retrying(async () => {
          await store.get('x');
          throw new Error('still up');
        }, 5_000),
      ).rejects.toSatisfy(isStoreUnavailable);
      await etcd.restart();
      await retrying(() => store.put('r/after', '2'));
      await store.put('r/later', '3');
      await waitUntil(() => w.groups.length >= 3, { what: 'resumed watch', timeoutMs: 30_000 });
      expect(w.groups.map(show)).toEqual([['put r/before=1'], ['put r/after=2'], ['put r/later=3']]);
      expect(w.errors).toEqual([]);
      await w.watch.close();
    } finally {
      await store.close();
    }
  });

  it('fails to open with StoreUnavailableError when nothing listens', async () => {
    await expect(openEtcdStore({ endpoints: ['http://127.0.0.1:1'], callTimeoutMs: 2_000 })).rejects.toSatisfy(isStoreUnavailable);
  });
});
