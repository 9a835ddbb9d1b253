import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/support/processes.js';
import { openEmbeddedStore } from '../store/embedded.js';
import type { Store } from '../store/store.js';
import { TokenStore } from './tokens.js';

const log = pino({ level: 'silent' });
const open: Array<{ close(): Promise<void> }> = [];

afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

async function store(): Promise<Store> {
  const s = await openEmbeddedStore({ dir: await tempDir('runmesh-tokens-') });
  open.push(s);
  return s;
}

describe('bootstrapping the admin token', () => {
  it('creates exactly one, however many peers start at once, in a private file that works as an admin token', async () => {
    const s = await store();
    const peers = await Promise.all(Array.from({ length: 5 }, () => TokenStore.open(s, log)));
    open.push(...peers);
    const dirs = await Promise.all(peers.map(() => tempDir('runmesh-peer-')));
    const files = (await Promise.all(peers.map((p, i) => p.bootstrap(dirs[i]!)))).filter((f): f is string => f !== undefined);
    expect(files).toHaveLength(1);
    const file = files[0]!;
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const token = (await readFile(file, 'utf8')).trim();
    // Every peer follows the records: each knows the one admin token.
    for (const p of peers) {
      await expect.poll(() => p.verify(token), { timeout: 2_000 }).toMatchObject({ role: 'admin', tenants: 'all' });
    }
    expect(peers[0]!.list().filter((t) => t.role === 'admin')).toHaveLength(1);
    // No temp file is left behind by the peers that lost.
    for (const d of dirs) if (join(d, 'admin.token') !== file) await expect(stat(join(d, 'admin.token'))).rejects.toThrow();
  });

  it('does nothing on a store that was bootstrapped before (a restart)', async () => {
    const s = await store();
    const first = await TokenStore.open(s, log);
    open.push(first);
    expect(await first.bootstrap(await tempDir('runmesh-peer-'))).toBeDefined();
    const again = await TokenStore.open(s, log);
    open.push(again);
    expect(await again.bootstrap(await tempDir('runmesh-peer-'))).toBeUndefined();
  });
});

describe('checking a token', () => {
  it('refuses malformed, unknown, tampered and expired tokens, naming none of them', async () => {
    const t = await TokenStore.open(await store(), log);
    open.push(t);
    const good = await t.create({ name: 'ci', role: 'submitter', tenants: ['a'], ttlMs: 0 });
    expect(t.verify(good.token)).toMatchObject({ role: 'submitter', tenants: ['a'], name: 'ci' });
    const tampered = good.token.slice(0, -1) + (good.token.endsWith('A') ? 'B' : 'A');
    const expired = await t.create({ name: 'old', role: 'viewer', tenants: ['a'], ttlMs: 1 });
    for (const bad of ['', 'nope', 'rmt_short', tampered, `rmt_${'0'.repeat(16)}_${'x'.repeat(43)}`]) {
      const v = t.verify(bad);
      expect(v).toHaveProperty('refused');
      if (bad.length > 22) expect(JSON.stringify(v)).not.toContain(bad.slice(22));
    }
    expect(t.verify(expired.token, Date.now() + 10)).toMatchObject({ refused: expect.stringMatching(/expired/) as unknown });
  });
});
