import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/support/processes.js';
import { openEmbeddedStore } from '../store/embedded.js';
import { StoreUnavailableError } from '../store/errors.js';
import type { Store } from '../store/store.js';
import { PEER_SECRET_KEY } from './keys.js';
import { PeerSecret } from './peer-secret.js';

const stores: Store[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

async function open(): Promise<Store> {
  const store = await openEmbeddedStore({ dir: await tempDir('runmesh-peer-secret-'), logger: pino({ level: 'silent' }) });
  stores.push(store);
  return store;
}

describe('PeerSecret', () => {
  it('is created once when absent: of peers racing to join, one writes it and all use the stored one', async () => {
    const store = await open();
    const secrets = await Promise.all(Array.from({ length: 8 }, () => PeerSecret.load(store)));
    expect(new Set(secrets.map((s) => s.token())).size).toBe(1);
    const stored = await store.get(PEER_SECRET_KEY);
    expect(stored?.version).toBe(1);
    expect(Buffer.from(stored?.value ?? '', 'base64url')).toHaveLength(32);
    expect((await PeerSecret.load(store)).token()).toBe(secrets[0]?.token());
  });

  it('takes a store error for an error, never for "absent"', async () => {
    const store = await open();
    let txns = 0;
    const failing = Object.assign(Object.create(store) as Store, {
      get: () => Promise.reject(new StoreUnavailableError('store down')),
      txn: (...args: Parameters<Store['txn']>) => (txns++, store.txn(...args)),
    });
    await expect(PeerSecret.load(failing)).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(txns).toBe(0);
    expect(await store.get(PEER_SECRET_KEY)).toBeUndefined();
  });

  it('refuses a stored value that is not a secret, without echoing it', async () => {
    const store = await open();
    await store.put(PEER_SECRET_KEY, 'short-value');
    const err = await PeerSecret.load(store).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(String(err)).not.toContain('short-value');
  });

  it('never prints itself: not in a string, JSON or inspect', () => {
    const raw = randomBytes(32);
    const secret = PeerSecret.of(raw);
    const shown = [String(secret), JSON.stringify({ secret }), inspect(secret), inspect({ secret }, { depth: 5 })].join(' ');
    expect(shown).not.toContain(raw.toString('base64url'));
    expect(shown).not.toContain(secret.token());
    expect(shown).toContain('[peer secret]');
  });

  it('matches its own token only', () => {
    const secret = PeerSecret.of(randomBytes(32));
    expect(secret.matches(secret.token())).toBe(true);
    expect(secret.matches(PeerSecret.of(randomBytes(32)).token())).toBe(false);
    expect(secret.matches('')).toBe(false);
    expect(secret.matches(secret.token() + 'x')).toBe(false);
  });
});
