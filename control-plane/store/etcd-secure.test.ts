/**
 * The etcd store against etcd as operators run it: the contract suite over
 * TLS with client certificates, and against etcd's own users and roles (the
 * runmesh user may touch only /runmesh/); then each way of getting it wrong
 * stops the open with an error naming the cause.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ETCD_SERVER_NAME, otherCa } from '../../test/support/etcd-certs.js';
import { startEtcd, type TestEtcd } from '../../test/support/etcd.js';
import { sleep, waitUntil } from '../../test/support/wait.js';
import { Secret } from '../secret.js';
import { EtcdAuthError, EtcdTlsError } from './errors.js';
import { openEtcdStore, type EtcdStore, type EtcdStoreOptions } from './etcd.js';
import type { EtcdTls } from './etcd-tls.js';
import { storeContract } from './testing/contract.js';
import { collect, retrying, show } from './testing/contract-helpers.js';

let tlsEtcd: TestEtcd;
let authEtcd: TestEtcd;
beforeAll(async () => {
  [tlsEtcd, authEtcd] = await Promise.all([startEtcd({ tls: true }), startEtcd({ auth: true, authTokenTtlSeconds: 1 })]);
});
afterAll(async () => {
  await Promise.all([tlsEtcd?.stop(), authEtcd?.stop()]);
});

async function tlsOf(etcd: TestEtcd, files: Partial<{ caFile: string; certFile: string; keyFile: string }> = {}): Promise<EtcdTls> {
  const certs = etcd.certs!;
  const read = (file: string | undefined): Promise<Buffer | undefined> => (file ? readFile(file) : Promise.resolve(undefined));
  const pick = <K extends keyof typeof files>(k: K, fallback: string): string | undefined => (k in files ? files[k] : fallback);
  return {
    ca: await read(pick('caFile', certs.caFile)),
    cert: await read(pick('certFile', certs.client.certFile)),
    key: await read(pick('keyFile', certs.client.keyFile)),
    serverName: '',
  };
}

const runmeshUser = (etcd: TestEtcd, password = etcd.auth!.password): EtcdStoreOptions['user'] => ({
  name: etcd.auth!.user,
  password: new Secret(password),
});

/** A contract subject on its own prefix, reopened with the same options. */
function subject(etcd: () => TestEtcd, options: () => Promise<Omit<EtcdStoreOptions, 'endpoints' | 'prefix'>>) {
  return async () => {
    const prefix = `/runmesh/t-${randomUUID()}/`;
    const open = async (): Promise<EtcdStore> => openEtcdStore({ endpoints: [etcd().endpoint], prefix, ...(await options()) });
    const opened = [await open()];
    return {
      store: opened[0]!,
      compact: (rev: number) => opened[0]!.compact(rev),
      restart: async () => {
        await etcd().restart();
        return opened[0]!;
      },
      reopen: async () => {
        opened.push(await open());
        return opened.at(-1)!;
      },
      cleanup: async () => {
        for (const s of opened) await s.close();
      },
    };
  };
}

storeContract(
  'etcd over TLS with client certificates',
  subject(
    () => tlsEtcd,
    async () => ({ tls: await tlsOf(tlsEtcd) }),
  ),
);

storeContract(
  'etcd with auth, as a user limited to /runmesh/',
  subject(
    () => authEtcd,
    async () => ({ user: runmeshUser(authEtcd) }),
  ),
);

describe('etcd store, secured', () => {
  it('authenticates again once etcd forgot its token (expired after the TTL unused)', async () => {
    const store = await openEtcdStore({
      endpoints: [authEtcd.endpoint],
      prefix: `/runmesh/t-${randomUUID()}/`,
      user: runmeshUser(authEtcd),
    });
    try {
      await store.put('a', '1');
      await sleep(2_500); // --auth-token-ttl=1
      await store.txn({ success: [{ type: 'put', key: 'b', value: '2' }] });
      expect((await store.get('a'))?.value).toBe('1');
      expect((await store.range('')).kvs.map((kv) => kv.key)).toEqual(['a', 'b']);
    } finally {
      await store.close();
    }
  });

  it('keeps its watch and lease across an etcd restart, which forgets every token', async () => {
    const store = await openEtcdStore({
      endpoints: [authEtcd.endpoint],
      prefix: `/runmesh/t-${randomUUID()}/`,
      user: runmeshUser(authEtcd),
    });
    try {
      const w = await collect(store, 'w/');
      const lease = await store.grantLease(2);
      await store.put('w/before', '1', { lease: lease.id });
      await authEtcd.restart();
      // Writes only through the hot-path channel, so the watch must renew its token on its own.
      await retrying(() => store.txn({ success: [{ type: 'put', key: 'w/after', value: '2' }] }));
      await waitUntil(() => w.groups.length >= 2, { what: 'the resumed watch', timeoutMs: 15_000 });
      expect(w.groups.map(show)).toEqual([['put w/before=1'], ['put w/after=2']]);
      expect(w.errors).toEqual([]);
      const renewed = lease.renewedAt;
      await waitUntil(() => (lease.renewedAt ?? 0) > (renewed ?? 0), { what: 'a keepalive after the restart', timeoutMs: 5_000 });
      await sleep(2_500);
      expect((await store.get('w/before'))?.value).toBe('1');
      await w.watch.close();
    } finally {
      await store.close();
    }
  });

  it('refuses to open with a CA that did not sign etcd’s certificate, naming it', async () => {
    const other = await otherCa(tlsEtcd.dataDir);
    const err = await openEtcdStore({ endpoints: [tlsEtcd.endpoint], tls: await tlsOf(tlsEtcd, { caFile: other.caFile }) }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EtcdTlsError);
    expect((err as Error).message).toMatch(/not signed by the CA in --etcd-ca/);
  });

  it('verifies etcd’s certificate against --etcd-server-name instead of the address, on both connections', async () => {
    const tls = { ...(await tlsOf(tlsEtcd)), serverName: ETCD_SERVER_NAME };
    const store = await openEtcdStore({ endpoints: [tlsEtcd.endpoint], prefix: `/runmesh/t-${randomUUID()}/`, tls });
    try {
      await store.txn({ success: [{ type: 'put', key: 'a', value: '1' }] }); // the hot-path channel
      expect((await store.get('a'))?.value).toBe('1'); // etcd3's
    } finally {
      await store.close();
    }
    const err = await openEtcdStore({ endpoints: [tlsEtcd.endpoint], tls: { ...tls, serverName: 'elsewhere.test' } }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EtcdTlsError);
    expect((err as Error).message).toMatch(/its certificate does not name "elsewhere.test".*--etcd-server-name/);
  });

  it('refuses to open without a client certificate, naming it', async () => {
    const err = await openEtcdStore({
      endpoints: [tlsEtcd.endpoint],
      tls: await tlsOf(tlsEtcd, { certFile: undefined, keyFile: undefined }),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EtcdTlsError);
    expect((err as Error).message).toMatch(/requires a client certificate: give --etcd-cert and --etcd-key/);
  });

  it('refuses to open with a client certificate etcd does not trust, naming it', async () => {
    const other = await otherCa(tlsEtcd.dataDir);
    const stranger = await tlsEtcd.certs!.issueClient('stranger', { by: other.ca });
    const err = await openEtcdStore({ endpoints: [tlsEtcd.endpoint], tls: await tlsOf(tlsEtcd, stranger) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EtcdTlsError);
    expect((err as Error).message).toMatch(/refused the client certificate \(--etcd-cert\)/);
  });

  it('refuses to open with a wrong password, naming it', async () => {
    const err = await openEtcdStore({ endpoints: [authEtcd.endpoint], user: runmeshUser(authEtcd, 'not-the-password-1x') }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EtcdAuthError);
    expect((err as Error).message).toMatch(/refused user "runmesh": wrong password/);
    expect(JSON.stringify(err, Object.getOwnPropertyNames(err))).not.toContain('not-the-password-1x');
  });

  it('refuses to open without a user when etcd requires one, naming it', async () => {
    const err = await openEtcdStore({ endpoints: [authEtcd.endpoint] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EtcdAuthError);
    expect((err as Error).message).toMatch(/requires a user: give --etcd-user/);
  });

  it('goes degraded, with a log line, when its client certificate expires while it runs', async () => {
    const soon = await tlsEtcd.certs!.issueClient('short-lived', { notAfter: new Date(Date.now() + 3_000) });
    const lines: string[] = [];
    const { default: pino } = await import('pino');
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    const store = await openEtcdStore({ endpoints: [tlsEtcd.endpoint], tls: await tlsOf(tlsEtcd, soon), logger });
    try {
      expect(store.degraded()).toBe('');
      await waitUntil(() => store.degraded() !== '', { what: 'the expiry', timeoutMs: 10_000 });
      expect(store.degraded()).toMatch(/etcd client certificate \(--etcd-cert\) expired at/);
      expect(lines.some((l) => l.includes('etcd client certificate expired'))).toBe(true);
      // The live connection still answers: nothing forces the peer down.
      await store.put('still', 'answers');
    } finally {
      await store.close();
    }
  });

  it('refuses to open with an expired client certificate, naming it', async () => {
    const past = await tlsEtcd.certs!.issueClient('expired', { notAfter: new Date(Date.now() - 1_000) });
    const err = await openEtcdStore({ endpoints: [tlsEtcd.endpoint], tls: await tlsOf(tlsEtcd, past) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EtcdTlsError);
    expect((err as Error).message).toMatch(/client certificate \(--etcd-cert\) expired at/);
  });
});
