/**
 * The store area: one etcd-shaped interface (`store.ts`), two implementations
 * (embedded lmdb for one host, etcd for a cluster) and the contract suite they
 * both pass (`contract.ts`). `openStore` turns the `--store` flag into one.
 */
import path from 'node:path';
import type pino from 'pino';
import { openEmbeddedStore } from './embedded.js';
import { StoreError } from './errors.js';
import { openEtcdStore } from './etcd.js';
import { withGroupCommit } from './group-commit.js';
import type { Store } from './store.js';

export * from './errors.js';
export type * from './store.js';
export { openEmbeddedStore, EmbeddedStore, type EmbeddedStoreOptions } from './embedded.js';
export { openEtcdStore, EtcdStore, type EtcdStoreOptions } from './etcd.js';
export { withGroupCommit } from './group-commit.js';

/**
 * Opens the store named by the `--store` flag: empty or absent means the
 * embedded store in `${dataDir}/store`; `etcd://host:port[,host:port...]`
 * means etcd at those client endpoints (plain http).
 */
export async function openStore(url: string | undefined, dataDir: string, logger: pino.Logger): Promise<Store> {
  if (url === undefined || url === '') return openEmbeddedStore({ dir: path.join(dataDir, 'store'), logger });
  return withGroupCommit(await openEtcdStore({ endpoints: etcdEndpoints(url), logger }));
}

/** `etcd://h:p,h2:p2` -> [`http://h:p`, `http://h2:p2`]. */
export function etcdEndpoints(url: string): string[] {
  const match = /^etcd:\/\/(.+)$/.exec(url);
  const hosts = match?.[1]?.split(',').map((h) => h.trim()) ?? [];
  if (hosts.length === 0 || hosts.some((h) => !/^[^\s/:]+:\d+$/.test(h) && !/^\[[0-9a-fA-F:.]+\]:\d+$/.test(h))) {
    throw new StoreError(`--store ${JSON.stringify(url)}: expected etcd://host:port[,host:port...] or nothing for the embedded store`);
  }
  return hosts.map((h) => `http://${h}`);
}
