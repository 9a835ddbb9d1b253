/**
 * Secrets at rest, on both stores (embedded lmdb in a temp dir, and a real
 * etcd): no value in any key or value the store holds, nor in any file of
 * the store's data dir; a ciphertext moved to another name or tenant does
 * not open; rotation re-seals everything so the old key is no longer
 * needed; a store error is an error, never "no such secret".
 */
import { randomBytes } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type TestEtcd } from '../../test/support/etcd.js';
import { tempDir } from '../../test/support/processes.js';
import { Secret } from '../secret.js';
import { openEmbeddedStore } from '../store/embedded.js';
import { openEtcdStore } from '../store/etcd.js';
import type { Store } from '../store/store.js';
import { isSecretMissing, isSecretUnreadable, KeyRing, parseKey, SecretStore, SECRETS_PREFIX } from './index.js';

const VALUE = `s3cr3t-${randomBytes(12).toString('hex')}`;
const OTHER = `other-${randomBytes(12).toString('hex')}`;

/** Every file under `dir`, whole. */
async function filesUnder(dir: string): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (const e of await readdir(dir, { recursive: true })) {
    const p = join(dir, e);
    if ((await stat(p)).isFile()) out.push(await readFile(p));
  }
  return out;
}

let etcd: TestEtcd;
beforeAll(async () => {
  etcd = await startEtcd();
});
afterAll(async () => {
  await etcd?.stop();
});

interface Opened {
  store: Store;
  /** Where the store keeps its bytes on disk. */
  dataDir: string;
}

const stores: Array<[string, () => Promise<Opened>]> = [
  [
    'embedded',
    async () => {
      const dir = await tempDir('runmesh-secrets-');
      return { store: await openEmbeddedStore({ dir }), dataDir: dir };
    },
  ],
  [
    'etcd',
    async () => ({
      store: await openEtcdStore({ endpoints: [etcd.endpoint], prefix: `/t-${randomBytes(6).toString('hex')}` }),
      dataDir: etcd.dataDir,
    }),
  ],
];

describe.each(stores)('secrets in the %s store', (_kind, open) => {
  let s: Opened;
  const oldKey = randomBytes(32);
  const newKey = randomBytes(32);
  beforeAll(async () => {
    s = await open();
  });
  afterAll(async () => {
    await s?.store.close();
  });

  it('keeps no value in any key, any value, or any file of the store', async () => {
    const secrets = new SecretStore(s.store, KeyRing.of(oldKey));
    const { created } = await secrets.set('a', 'DEPLOY_KEY', new Secret(VALUE), 'tok1');
    expect(created).toBe(true);
    await secrets.set('a', 'MULTI', new Secret(`${OTHER}\nline two`), 'tok1');
    expect((await secrets.set('a', 'DEPLOY_KEY', new Secret(VALUE), 'tok2')).created).toBe(false);
    const raw = JSON.stringify((await s.store.range('/')).kvs);
    expect(raw).toContain(`${SECRETS_PREFIX}a/DEPLOY_KEY`);
    for (const v of [VALUE, OTHER, Buffer.from(VALUE).toString('base64'), Buffer.from(VALUE).toString('hex')]) expect(raw).not.toContain(v);
    for (const f of await filesUnder(s.dataDir)) {
      expect(f.includes(VALUE)).toBe(false);
      expect(f.includes(OTHER)).toBe(false);
    }
    const listed = await secrets.list(['a']);
    expect(listed.map((m) => m.name)).toEqual(['DEPLOY_KEY', 'MULTI']);
    expect(JSON.stringify(listed)).not.toContain(VALUE);
    expect(listed[0]).toMatchObject({ tenant: 'a', updatedBy: 'tok2', keyId: KeyRing.of(oldKey).currentId });
    expect((await secrets.resolve('a', ['DEPLOY_KEY'])).get('DEPLOY_KEY')?.reveal()).toBe(VALUE);
  });

  it('refuses a ciphertext moved to another name or tenant', async () => {
    const secrets = new SecretStore(s.store, KeyRing.of(oldKey));
    const kv = (await s.store.get(`${SECRETS_PREFIX}a/DEPLOY_KEY`))!;
    await s.store.put(`${SECRETS_PREFIX}a/STOLEN`, kv.value);
    await s.store.put(`${SECRETS_PREFIX}b/DEPLOY_KEY`, kv.value);
    for (const [tenant, name] of [
      ['a', 'STOLEN'],
      ['b', 'DEPLOY_KEY'],
    ] as const) {
      const err = await secrets.resolve(tenant, [name]).catch((e: unknown) => e);
      expect(isSecretUnreadable(err)).toBe(true);
      expect(String(err)).toMatch(/not authentic/);
    }
    await s.store.delete(`${SECRETS_PREFIX}a/STOLEN`);
    await s.store.delete(`${SECRETS_PREFIX}b/DEPLOY_KEY`);
    expect(isSecretMissing(await secrets.resolve('a', ['NOPE']).catch((e: unknown) => e))).toBe(true);
  });

  it('re-encrypts everything under a new key, after which the old key is not needed', async () => {
    const both = new SecretStore(s.store, KeyRing.of(newKey, [oldKey]));
    expect(await both.reencrypt()).toEqual({ reencrypted: 2, total: 2 });
    expect(await both.reencrypt()).toEqual({ reencrypted: 0, total: 2 });
    const onlyNew = new SecretStore(s.store, KeyRing.of(newKey));
    expect((await onlyNew.list('all')).map((m) => m.keyId)).toEqual([KeyRing.of(newKey).currentId, KeyRing.of(newKey).currentId]);
    const values = await onlyNew.resolve('a', ['DEPLOY_KEY', 'MULTI']);
    expect(values.get('DEPLOY_KEY')?.reveal()).toBe(VALUE);
    expect(values.get('MULTI')?.reveal()).toBe(`${OTHER}\nline two`);
    const onlyOld = new SecretStore(s.store, KeyRing.of(oldKey));
    expect(String(await onlyOld.resolve('a', ['DEPLOY_KEY']).catch((e: unknown) => e))).toMatch(/which this server does not hold/);
  });

  it('deletes', async () => {
    const secrets = new SecretStore(s.store, KeyRing.of(newKey));
    expect(await secrets.delete('a', 'MULTI')).toBe(true);
    expect(await secrets.delete('a', 'MULTI')).toBe(false);
    expect(await secrets.exists('a', 'MULTI')).toBe(false);
    expect(await secrets.exists('a', 'DEPLOY_KEY')).toBe(true);
  });
});

describe('secrets and store errors', () => {
  it('throws the store error instead of answering "absent"', async () => {
    const dir = await tempDir('runmesh-secrets-');
    const store = await openEmbeddedStore({ dir });
    const secrets = new SecretStore(store, KeyRing.of(randomBytes(32)));
    await store.close();
    await expect(secrets.exists('a', 'X')).rejects.toThrow();
    await expect(secrets.resolve('a', ['X'])).rejects.toSatisfy((e: unknown) => !isSecretMissing(e));
  });
});

describe('keys', () => {
  it('reads 32 raw bytes, 64 hex characters or base64, and refuses the rest without echoing it', () => {
    const key = randomBytes(32);
    expect(parseKey(key, 'k')).toEqual(key);
    expect(parseKey(Buffer.from(`${key.toString('hex')}\n`), 'k')).toEqual(key);
    expect(parseKey(Buffer.from(` ${key.toString('base64')}\n`), 'k')).toEqual(key);
    expect(() => parseKey(Buffer.from('hunter2-not-a-key'), 'the file')).toThrow(/^the file: not a secrets key/);
    expect(() => parseKey(Buffer.from('hunter2-not-a-key'), 'the file')).not.toThrow(/hunter2/);
  });

  it('prints nothing of a key ring', () => {
    const ring = KeyRing.of(randomBytes(32));
    expect(JSON.stringify(ring)).not.toMatch(/[A-Za-z0-9+/]{40}/);
  });
});
