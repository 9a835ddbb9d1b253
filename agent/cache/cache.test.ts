import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { entryId, JobCache, parseSize } from './cache.js';

const log = pino({ level: 'silent' });

/** A workspace with `dir/file` of `bytes` bytes. */
async function workspace(dir: string, bytes: number): Promise<string> {
  const ws = await mkdtemp(join(tmpdir(), 'runmesh-cache-ws-'));
  mkdirSync(join(ws, dir));
  writeFileSync(join(ws, dir, 'file'), 'x'.repeat(bytes));
  return ws;
}

describe('JobCache', () => {
  it('evicts the least recently used entry past its cap, never a pinned one, and keeps tenants apart', async () => {
    const root = await mkdtemp(join(tmpdir(), 'runmesh-cache-'));
    const cache = new JobCache(root, 250, log);
    await cache.load();
    const ref = (key: string) => [{ key, path: 'deps' }];
    await cache.save('t', ref('a'), await workspace('deps', 100));
    await cache.save('t', ref('b'), await workspace('deps', 100));
    // a is used (and stays pinned), so b is now the least recently used.
    expect(cache.checkout('t', ref('a'))).toEqual([{ path: 'deps', from: join(root, entryId('t', 'a'), 'data') }]);
    expect(cache.checkout('other', ref('a'))).toEqual([]); // another tenant's key of the same name: a miss
    await cache.save('t', ref('c'), await workspace('deps', 100));
    expect(existsSync(join(root, entryId('t', 'b')))).toBe(false);
    expect(cache.stats()).toEqual({ bytes: 200, entries: 2, hits: 1, misses: 1 });

    // Over the cap with only a pinned entry and the new one left unpinned: the pinned one stays.
    await cache.save('t', ref('d'), await workspace('deps', 100));
    expect(existsSync(join(root, entryId('t', 'a')))).toBe(true);
    expect(existsSync(join(root, entryId('t', 'c')))).toBe(false);
    cache.release('t', ref('a'));

    // A later agent process finds the entries, and nothing of a save cut short.
    mkdirSync(join(root, '.tmp-cut-short'));
    const again = new JobCache(root, 250, log);
    await again.load();
    expect(again.stats()).toMatchObject({ bytes: 200, entries: 2 });
    expect(existsSync(join(root, '.tmp-cut-short'))).toBe(false);
    expect(readFileSync(join(root, entryId('t', 'd'), 'data', 'file'), 'utf8')).toHaveLength(100);
  });

  it('saves nothing through a link out of the workspace, nor an entry larger than the whole cache', async () => {
    const root = await mkdtemp(join(tmpdir(), 'runmesh-cache-'));
    const cache = new JobCache(root, 50, log);
    await cache.load();
    const ws = await workspace('big', 100);
    symlinkSync('/etc', join(ws, 'out'));
    await cache.save(
      't',
      [
        { key: 'big', path: 'big' },
        { key: 'out', path: 'out' },
        { key: 'none', path: 'absent' },
      ],
      ws,
    );
    expect(cache.stats()).toMatchObject({ bytes: 0, entries: 0 });
  });
});

describe('parseSize', () => {
  it('reads decimal and binary units, and refuses anything else', () => {
    expect(parseSize('10GB')).toBe(10e9);
    expect(parseSize('500MB')).toBe(500e6);
    expect(parseSize('2GiB')).toBe(2 * 1024 ** 3);
    expect(parseSize('1024')).toBe(1024);
    expect(() => parseSize('ten')).toThrow(/not a size/);
    expect(() => parseSize('5XB')).toThrow(/not a size/);
  });
});
