/**
 * The store area: one etcd-shaped interface (`store.ts`), two implementations
 * (embedded lmdb for one host, etcd for a cluster) and the contract suite they
 * both pass (`contract.ts`). `openStore` turns the `--store` and `--etcd-*`
 * flags into one; `onCommit` is told of every commit either way (metrics).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type pino from 'pino';
import { Secret } from '../secret.js';
import { openEmbeddedStore } from './embedded.js';
import { StoreError } from './errors.js';
import { openEtcdStore } from './etcd.js';
import type { EtcdUser } from './etcd-auth.js';
import { NO_ETCD_FLAGS, type EtcdFlags } from './etcd-flags.js';
import type { EtcdTls } from './etcd-tls.js';
import type { CommitObserver } from './commit-observer.js';
import { withGroupCommit } from './group-commit.js';
import type { Store } from './store.js';

export * from './errors.js';
export type * from './store.js';
export { openEmbeddedStore, EmbeddedStore, type EmbeddedStoreOptions } from './embedded.js';
export { openEtcdStore, EtcdStore, type EtcdStoreOptions } from './etcd.js';
export type { EtcdTls } from './etcd-tls.js';
export type { EtcdUser } from './etcd-auth.js';
export { withGroupCommit } from './group-commit.js';
export type { CommitObserver, CommitObservation } from './commit-observer.js';
export { NO_ETCD_FLAGS, type EtcdFlags } from './etcd-flags.js';

/**
 * Opens the store named by the `--store` flag: empty or absent means the
 * embedded store in `${dataDir}/store`; `etcd://host:port[,host:port...]`
 * means etcd at those client endpoints in plaintext, `etcds://` (or
 * `https://`) over TLS, set up by the `--etcd-*` flags.
 */
export async function openStore(
  url: string | undefined,
  dataDir: string,
  logger: pino.Logger,
  etcd: EtcdFlags = NO_ETCD_FLAGS,
  onCommit?: CommitObserver,
): Promise<Store> {
  if (url === undefined || url === '') {
    const given = Object.entries(etcd).find(([, v]) => v !== '');
    if (given) throw new StoreError(`--etcd-${flagName(given[0])} goes with an etcd --store`);
    return openEmbeddedStore({ dir: path.join(dataDir, 'store'), logger, onCommit });
  }
  const endpoints = etcdEndpoints(url);
  const tls = endpoints[0]!.startsWith('https:') ? await readTls(etcd) : undefined;
  if (!tls && (etcd.ca || etcd.cert || etcd.key || etcd.serverName))
    throw new StoreError(
      `--etcd-ca, --etcd-cert, --etcd-key and --etcd-server-name need a TLS store address: etcds://${url.replace(/^[a-z]+:\/\//, '')}`,
    );
  return withGroupCommit(await openEtcdStore({ endpoints, logger, tls, user: await readUser(etcd) }), onCommit);
}

/** `etcd://h:p,h2:p2` -> [`http://h:p`, `http://h2:p2`]; `etcds://` or `https://` -> `https://` ones. */
export function etcdEndpoints(url: string): string[] {
  const match = /^(etcd|etcds|http|https):\/\/(.+)$/.exec(url);
  const hosts = match?.[2]?.split(',').map((h) => h.trim()) ?? [];
  if (hosts.length === 0 || hosts.some((h) => !/^[^\s/:]+:\d+$/.test(h) && !/^\[[0-9a-fA-F:.]+\]:\d+$/.test(h))) {
    throw new StoreError(
      `--store ${JSON.stringify(url)}: expected etcds://host:port[,host:port...] (TLS), etcd://... (plaintext) or nothing for the embedded store`,
    );
  }
  const scheme = match?.[1] === 'etcds' || match?.[1] === 'https' ? 'https' : 'http';
  return hosts.map((h) => `${scheme}://${h}`);
}

async function readTls(f: EtcdFlags): Promise<EtcdTls> {
  if (!f.cert !== !f.key) throw new StoreError('--etcd-cert and --etcd-key go together');
  return {
    ca: f.ca ? await readFlagFile('ca', f.ca) : undefined,
    cert: f.cert ? await readFlagFile('cert', f.cert) : undefined,
    key: f.key ? await readFlagFile('key', f.key) : undefined,
    serverName: f.serverName,
  };
}

async function readUser(f: EtcdFlags): Promise<EtcdUser | undefined> {
  if (!f.user !== !f.passwordFile) throw new StoreError('--etcd-user and --etcd-password-file go together');
  if (!f.user) return undefined;
  // A file written with echo ends in a newline that is no part of the password.
  const password = (await readFlagFile('password-file', f.passwordFile)).toString().replace(/\r?\n$/, '');
  if (password === '') throw new StoreError(`--etcd-password-file ${f.passwordFile} is empty`);
  return { name: f.user, password: new Secret(password) };
}

async function readFlagFile(flag: string, file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw new StoreError(`--etcd-${flag} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
}

const flagName = (field: string): string => ({ serverName: 'server-name', passwordFile: 'password-file' })[field] ?? field;
