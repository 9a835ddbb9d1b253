import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { storeContract } from './testing/contract.js';
import { collect } from './testing/contract-helpers.js';
import { openEmbeddedStore, type EmbeddedStore } from './embedded.js';
import { isCompacted } from './errors.js';
import { waitUntil } from '../../test/support/wait.js';

async function tempDir(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'runmesh-store-'));
}

storeContract('embedded', async () => {
  const dir = await tempDir();
  const opened: EmbeddedStore[] = [await openEmbeddedStore({ dir })];
  const reopen = async (): Promise<EmbeddedStore> => {
    const s = await openEmbeddedStore({ dir });
    opened.push(s);
    return s;
  };
  return {
    store: opened[0]!,
    compact: (rev) => opened[opened.length - 1]!.compact(rev),
    restart: async () => {
      await opened[opened.length - 1]!.close();
      return reopen();
    },
    reopen,
    cleanup: async () => {
      for (const s of opened) await s.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

describe('embedded store', () => {
  it('forgets watch history across a restart: older revisions read as compacted', async () => {
    const dir = await tempDir();
    try {
      const first = await openEmbeddedStore({ dir });
      const before = await first.put('k', '1');
      await first.close();
      const second = await openEmbeddedStore({ dir });
      const old = await collect(second, '', before - 1);
      const now = await collect(second, '', before);
      await second.put('k', '2');
      await waitUntil(() => old.errors.length === 1 && now.groups.length === 1, { what: 'the compaction error and the kept watch' });
      expect(isCompacted(old.errors[0])).toBe(true);
      await second.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('commits concurrent transactions in groups, each with its own compare', async () => {
    const dir = await tempDir();
    const store = await openEmbeddedStore({ dir });
    try {
      // 50 racers try to create the same key in one tick: exactly one wins.
      const racers = Array.from({ length: 50 }, (_, i) =>
        store.txn({
          compare: [{ key: 'race', target: 'version', op: '==', value: 0 }],
          success: [{ type: 'put', key: 'race', value: String(i) }],
        }),
      );
      const results = await Promise.all(racers);
      expect(results.filter((r) => r.succeeded)).toHaveLength(1);
      expect((await store.get('race'))?.version).toBe(1);

      const n = 20_000;
      const started = performance.now();
      const revs = await Promise.all(Array.from({ length: n }, (_, i) => store.put(`bench/${i}`, 'v')));
      const seconds = (performance.now() - started) / 1000;
      console.log(`embedded store: ${n} concurrent single-put txns in ${seconds.toFixed(2)} s = ${Math.round(n / seconds)} txns/s`);
      expect(new Set(revs).size).toBe(n);

      // The job hot path: many writers, each waiting for its previous txn (group commit across ticks).
      const writers = 64;
      const each = 100;
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: writers }, async (_, w) => {
          for (let i = 0; i < each; i++) await store.put(`loop/${w}`, String(i));
        }),
      );
      const s2 = (performance.now() - t0) / 1000;
      console.log(
        `embedded store: ${writers} writers x ${each} sequential txns in ${s2.toFixed(2)} s = ${Math.round((writers * each) / s2)} txns/s`,
      );
      expect((await store.get('loop/0'))?.version).toBe(each);
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
