/**
 * Console sessions in the store, on both stores: what is kept opens only with
 * the cookie, a session ends when idle, old, signed out or crowded out by its
 * own token's newer ones, its last use is written back sparingly, the sweep drops only what expired, and while the store
 * cannot be read a peer serves the sessions it saw, and errs on the rest
 * (never reading the error as a signed-out user).
 */
import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type TestEtcd } from '../../test/support/etcd.js';
import { tempDir } from '../../test/support/processes.js';
import { openEmbeddedStore } from '../store/embedded.js';
import { openEtcdStore } from '../store/etcd.js';
import type { Store } from '../store/store.js';
import { DEFAULT_SESSION_LIMITS, SESSIONS_PREFIX, SessionStore } from './sessions.js';

const log = pino({ level: 'silent' });
const LIMITS = { ...DEFAULT_SESSION_LIMITS, idleMs: 1000, maxAgeMs: 5000, perToken: 3, touchMs: 100 };
const T0 = 1_800_000_000_000;

let etcd: TestEtcd;
beforeAll(async () => {
  etcd = await startEtcd();
});
afterAll(() => etcd?.stop());

const stores: Array<[string, () => Promise<Store>]> = [
  ['embedded', async () => openEmbeddedStore({ dir: await tempDir('runmesh-sessions-') })],
  ['etcd', () => openEtcdStore({ endpoints: [etcd.endpoint], prefix: `/sessions-${randomUUID()}/` })],
];

describe.each(stores)('console sessions on the %s store', (_name, open) => {
  it('open only with the cookie, and end when idle, too old or signed out; a use is written back sparingly', async () => {
    const store = await open();
    try {
      const sessions = new SessionStore(store, log, LIMITS);
      const s = await sessions.create('rmt_secret-token', 'tok-1', T0);
      const [kv] = (await store.range(SESSIONS_PREFIX)).kvs;
      expect(kv!.value).not.toContain('rmt_secret-token');
      expect(kv!.key).not.toContain(s.id.split('.')[1]!);

      const again = await sessions.get(s.id, T0 + 50);
      expect(again?.token.reveal()).toBe('rmt_secret-token');
      expect(again?.csrf).toBe(s.csrf);
      // The same group with another secret, or no id at all, opens nothing.
      expect(await sessions.get(`${s.id.split('.')[0]!}.${'A'.repeat(43)}`, T0)).toBeUndefined();
      expect(await sessions.get('not-a-session', T0)).toBeUndefined();

      // Used within touchMs: no write; after it: one.
      const rev = (await store.get(kv!.key))!.modRevision;
      await sessions.get(s.id, T0 + 90);
      expect((await store.get(kv!.key))!.modRevision).toBe(rev);
      await sessions.get(s.id, T0 + 900);
      expect((await store.get(kv!.key))!.modRevision).toBeGreaterThan(rev);
      // Idle for idleMs after its last recorded use: gone, and deleted.
      expect(await sessions.get(s.id, T0 + 1800)).toBeDefined();
      expect(await sessions.get(s.id, T0 + 1800 + 1001)).toBeUndefined();
      expect(await store.get(kv!.key)).toBeUndefined();

      // Kept busy, it still ends at maxAgeMs.
      const busy = await sessions.create('rmt_busy', 'tok-1', T0);
      for (let t = T0 + 500; t < T0 + 5000; t += 500) expect(await sessions.get(busy.id, t)).toBeDefined();
      expect(await sessions.get(busy.id, T0 + 5001)).toBeUndefined();

      const out = await sessions.create('rmt_out', 'tok-1', T0);
      await sessions.delete(out.id);
      expect(await sessions.get(out.id, T0 + 1)).toBeUndefined();
    } finally {
      await store.close();
    }
  });

  it("keep a token's sessions under its cap, the least recently used going first, without touching another token's", async () => {
    const store = await open();
    try {
      const sessions = new SessionStore(store, log, LIMITS);
      const other = await sessions.create('rmt_other', 'tok-other', T0);
      const made = [];
      for (let i = 0; i < 3; i++) made.push(await sessions.create(`rmt_${i}`, 'tok-1', T0 + i));
      await sessions.get(made[0]!.id, T0 + 200); // the first is now the most recently used
      const fourth = await sessions.create('rmt_3', 'tok-1', T0 + 300);
      const live = async (id: string) => (await sessions.get(id, T0 + 400)) !== undefined;
      expect([await live(made[0]!.id), await live(made[1]!.id), await live(made[2]!.id), await live(fourth.id)]).toEqual([
        true,
        false,
        true,
        true,
      ]);
      expect(await live(other.id)).toBe(true);
    } finally {
      await store.close();
    }
  });

  it('are swept only once expired; an unreadable record is dropped, not trusted', async () => {
    const store = await open();
    try {
      const sessions = new SessionStore(store, log, LIMITS);
      const old = await sessions.create('rmt_old', 'tok-a', T0);
      const fresh = await sessions.create('rmt_fresh', 'tok-b', T0 + 900);
      expect(await sessions.sweep(T0 + 1500)).toBe(1);
      expect(await sessions.get(old.id, T0 + 1500)).toBeUndefined();
      expect(await sessions.get(fresh.id, T0 + 1500)).toBeDefined();

      const [kv] = (await store.range(SESSIONS_PREFIX)).kvs;
      await store.put(kv!.key, '{"v":1,"token":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","createdAt":0,"lastSeen":0}');
      expect(await sessions.get(fresh.id, T0 + 1600)).toBeUndefined();
      expect(await store.get(kv!.key)).toBeUndefined();
    } finally {
      await store.close();
    }
  });

  it("are served from the peer's memory while the store cannot be read, until they expire; one it never saw is an error, not signed out", async () => {
    const store = await open();
    const here = new SessionStore(store, log, LIMITS);
    const elsewhere = new SessionStore(store, log, LIMITS); // another peer
    const mine = await here.create('rmt_mine', 'tok-x', T0);
    const theirs = await elsewhere.create('rmt_theirs', 'tok-y', T0);
    await store.close();
    expect((await here.get(mine.id, T0 + 500))?.token.reveal()).toBe('rmt_mine');
    await expect(here.get(mine.id, T0 + 500 + 1001)).rejects.toThrow(); // expired: the store's error, not a session
    await expect(here.get(theirs.id, T0 + 1)).rejects.toThrow();
  });
});

describe('console sessions while etcd is frozen', () => {
  it('serve a session this peer saw within a few seconds, not after the client call timeout', async () => {
    const store = await openEtcdStore({ endpoints: [etcd.endpoint], prefix: `/sessions-${randomUUID()}/` });
    try {
      const sessions = new SessionStore(store, log);
      const s = await sessions.create('rmt_frozen', 'tok-f', Date.now());
      etcd.kill('SIGSTOP');
      try {
        const started = Date.now();
        expect((await sessions.get(s.id))?.token.reveal()).toBe('rmt_frozen');
        expect(Date.now() - started).toBeLessThan(5000);
      } finally {
        etcd.kill('SIGCONT');
      }
    } finally {
      await store.close();
    }
  });
});
