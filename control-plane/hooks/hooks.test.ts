/**
 * The pure parts of webhooks, and the replay window on a real embedded
 * store: GitHub's published signature example, the parameter map's paths and
 * refusals, and delivery ids claimed once per window, with the oldest swept
 * when a hook is full; hooks capped per tenant.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/support/processes.js';
import { isValidation } from '../jobs/errors.js';
import { openEmbeddedStore } from '../store/embedded.js';
import type { Store } from '../store/store.js';
import { Hook } from '../../proto/gen/runmesh/v1/hook.js';
import { Secret } from '../secret.js';
import { KeyRing } from '../secrets/index.js';
import { isTenantRecordsFull } from '../store/tenant-records.js';
import { HookStore, MAX_HOOKS_PER_TENANT } from './hook-store.js';
import { mapParams, MissingFieldError, parseParamMap } from './param-map.js';
import { ReplayWindow } from './replay.js';
import { sign, signedContent, verify } from './signature.js';

describe('signatures', () => {
  it("match GitHub's documented example, and refuse any other body, secret or header shape", () => {
    // docs.github.com, "Validating webhook deliveries".
    const secret = "It's a Secret to Everybody";
    const body = Buffer.from('Hello, World!');
    const header = 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17';
    expect(sign(secret, body)).toBe(header);
    expect(verify(secret, body, header)).toBe(true);
    expect(verify(secret, Buffer.from('Hello, World?'), header)).toBe(false);
    expect(verify('another secret', body, header)).toBe(false);
    for (const bad of [undefined, '', 'sha1=757107ea', header.slice(0, -2), `${header}00`, header.replace('sha256=', 'sha256=zz')])
      expect({ bad, ok: verify(secret, body, bad) }).toEqual({ bad, ok: false });
    expect(signedContent(body, '1700000000').toString()).toBe('1700000000.Hello, World!');
  });
});

describe('the parameter map', () => {
  const payload = { after: 'abc', ref: 'refs/heads/main', repository: { name: 'r', private: false, size: 12 }, commits: [{ id: 'c1' }] };

  it('takes strings, numbers and booleans by dotted path, with or without $.', () => {
    const map = parseParamMap(
      'sha=$.after, branch=ref,repo=repository.name,private=$.repository.private,size=repository.size,first=commits.0.id',
    );
    expect(mapParams(map, payload)).toEqual({
      sha: 'abc',
      branch: 'refs/heads/main',
      repo: 'r',
      private: 'false',
      size: '12',
      first: 'c1',
    });
  });

  it('names the path that finds nothing, or finds an object', () => {
    const err = (map: Record<string, string>): unknown => {
      try {
        return mapParams(map, payload);
      } catch (e) {
        return e;
      }
    };
    expect(err({ sha: '$.before' })).toEqual(new MissingFieldError('$.before', 'missing'));
    expect((err({ repo: 'repository' }) as Error).message).toBe('payload field repository: not a string, number or boolean');
    expect(err({ x: 'constructor' })).toBeInstanceOf(MissingFieldError);
    expect(err({ x: 'after.length' })).toBeInstanceOf(MissingFieldError);
  });

  it('refuses entries that are not PARAM=PATH, naming them', () => {
    for (const bad of ['sha', '=x', 'sha=', 'sha=a..b', '1sha=after', 'sha=$[0]'])
      expect({
        bad,
        refused: ((): boolean => {
          try {
            parseParamMap(bad);
            return false;
          } catch (e) {
            return isValidation(e);
          }
        })(),
      }).toEqual({ bad, refused: true });
  });
});

describe('the replay window', () => {
  let store: Store;
  beforeAll(async () => {
    store = await openEmbeddedStore({ dir: await tempDir('runmesh-replay-') });
  });
  afterAll(async () => store.close());

  it('claims an id once within the window, again after it, and keeps hooks apart', async () => {
    const w = new ReplayWindow(store, { windowMs: 1000, maxIds: 100 });
    expect(await w.claim('a', 'd1', 0)).toBe('claimed');
    expect(await w.claim('a', 'd1', 999)).toBe('replay');
    expect(await w.claim('b', 'd1', 999)).toBe('claimed');
    expect(await w.claim('a', 'd1', 1000)).toBe('claimed');
    await w.release('a', 'd1');
    expect(await w.claim('a', 'd1', 1001)).toBe('claimed');
  });

  it('sweeps expired ids when a hook is full, and refuses while none has expired', async () => {
    const w = new ReplayWindow(store, { windowMs: 1000, maxIds: 3 });
    for (const id of ['x1', 'x2', 'x3']) expect(await w.claim('full', id, 0)).toBe('claimed');
    expect(await w.claim('full', 'x4', 500)).toBe('full');
    expect(await w.claim('full', 'x4', 1500)).toBe('claimed');
    expect(await store.count('/runmesh/hook-seen/full/')).toBe(1);
  });
});

describe('the hook store', () => {
  it('caps hooks per tenant, so one tenant cannot use up the room every other tenant has', async () => {
    const store = await openEmbeddedStore({ dir: await tempDir('runmesh-hookstore-') });
    try {
      const hooks = new HookStore(store, KeyRing.of(randomBytes(32)));
      const secret = new Secret('s'.repeat(32));
      const hook = (tenant: string, name: string): Hook =>
        Hook.fromPartial({ tenant, name, url: 'http://127.0.0.1:9/x', events: ['job.failed'] });
      for (let i = 0; i < MAX_HOOKS_PER_TENANT; i++) await hooks.create(hook('greedy', `h${i}`), secret);
      const refused = await hooks.create(hook('greedy', 'one-more'), secret).catch((err: unknown) => err);
      expect(isTenantRecordsFull(refused)).toBe(true);
      expect((refused as Error).message).toBe(`tenant greedy has ${MAX_HOOKS_PER_TENANT} hooks, the most it may have; delete one first`);
      await hooks.create(hook('other', 'mine'), secret);
      expect((await hooks.get('mine'))?.tenant).toBe('other');
    } finally {
      await store.close();
    }
  });
});
