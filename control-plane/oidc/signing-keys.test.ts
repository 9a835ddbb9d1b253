/**
 * The issuer's signing keys on a real embedded store, with time given to
 * each step: a new key is published before it signs, and the old one stays
 * published until every token it signed has expired.
 */
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/support/processes.js';
import { openEmbeddedStore } from '../store/embedded.js';
import { keyTimes, SigningKeys } from './signing-keys.js';

const HOUR = 3_600_000;
const log = pino({ level: 'silent' });
const closers: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const c of closers.reverse()) await c();
});

describe('OIDC signing keys', () => {
  it('rotate with an overlap, shared by every peer on the store', async () => {
    const store = await openEmbeddedStore({ dir: await tempDir('runmesh-oidc-') });
    closers.push(() => store.close());
    // A 4 h rotation: a new key 3 h after the last, signing 1 h later.
    const a = await SigningKeys.open(store, keyTimes(4 * HOUR), log, 3_600_000);
    const b = await SigningKeys.open(store, keyTimes(4 * HOUR), log, 3_600_000);
    closers.push(
      () => a.close(),
      () => b.close(),
    );
    const t0 = Date.now();
    const first = (await a.signer(t0)).kid;
    expect((await b.signer(t0)).kid).toBe(first); // the second peer made none of its own
    expect(a.jwks().keys.map((k) => k.kid)).toEqual([first]);

    await a.tend(t0 + 3 * HOUR + 1);
    await b.tend(t0 + 3 * HOUR + 2); // a racing peer does not make a third
    const published = a.jwks().keys.map((k) => k.kid);
    expect(published).toHaveLength(2);
    expect(published[0]).toBe(first);
    expect((await a.signer(t0 + 3 * HOUR + 1)).kid).toBe(first); // published, not yet signing
    const second = published[1]!;
    expect((await b.signer(t0 + 4 * HOUR + 2)).kid).toBe(second);

    // The old key stays until the new one has signed for longer than a token lives (10 min) plus skew.
    await a.tend(t0 + 4 * HOUR + 5 * 60_000);
    expect(a.jwks().keys.map((k) => k.kid)).toEqual([first, second]);
    await a.tend(t0 + 4 * HOUR + 12 * 60_000);
    await expect.poll(() => b.jwks().keys.map((k) => k.kid)).toEqual([second]);
  });
});
