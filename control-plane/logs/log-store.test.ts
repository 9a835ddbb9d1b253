/** The log blob store on a real disk: resumable reads, and sealing never pulls a file from under a reader. */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { isLogWriteError } from './errors.js';
import { LogStore } from './log-store.js';

const dirs: string[] = [];
const mounts: string[] = [];
afterEach(async () => {
  for (const m of mounts.splice(0)) spawnSync('umount', ['-l', m]);
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

/** A 256 KiB tmpfs, or why there is none (mounting needs root). */
async function smallDisk(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'runmesh-logs-full-'));
  dirs.push(dir);
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) return '';
  mounts.push(dir);
  return dir;
}
const canMount = spawnSync('id', ['-u'], { encoding: 'utf8' }).stdout.trim() === '0';

async function store(): Promise<LogStore> {
  const dir = await mkdtemp(join(tmpdir(), 'runmesh-logs-'));
  dirs.push(dir);
  return new LogStore(dir);
}

describe('LogStore', () => {
  it('reads nothing, and creates nothing, for a log it never had', async () => {
    const logs = await store();
    const got: number[] = [];
    for await (const r of logs.read('j_0000000000nope', 1, 0, () => 'done', new AbortController().signal)) got.push(r.seq);
    expect(got).toEqual([]);
    expect(await logs.jobs()).toEqual([]);
    await logs.close();
  });

  it('keeps a sealed file open for a reader that is still behind', async () => {
    const logs = await store();
    const file = await logs.file('j_0000000000abc', 1);
    const chunk = Buffer.alloc(64 * 1024, 'x');
    for (let seq = 0; seq < 400; seq++) file.append(seq, 1, chunk);
    await file.durable();
    let read = 0;
    const ac = new AbortController();
    const reader = (async () => {
      for await (const r of logs.read('j_0000000000abc', 1, 0, () => 'done', ac.signal)) {
        expect(r.seq).toBe(read);
        read++;
        if (read === 10) await logs.seal('j_0000000000abc', 1); // the result lands while we are behind
      }
    })();
    await reader;
    expect(read).toBe(400);
    // Sealed and unread: a fresh open still serves the whole log from disk.
    const again: number[] = [];
    for await (const r of logs.read('j_0000000000abc', 1, 398, () => 'done', ac.signal)) again.push(r.seq);
    expect(again).toEqual([398, 399]);
    await logs.close();
  });

  it('closes a log it only read once the reader is done, so finished logs hold no descriptor', async () => {
    const logs = await store();
    const file = await logs.file('j_0000000000aaa', 1);
    file.append(0, 1, Buffer.from('done'));
    await logs.seal('j_0000000000aaa', 1);
    const ac = new AbortController();
    for (let i = 0; i < 3; i++) {
      const seqs: number[] = [];
      for await (const r of logs.read('j_0000000000aaa', 1, 0, () => 'done', ac.signal)) seqs.push(r.seq);
      expect(seqs).toEqual([0]);
    }
    expect(await logs.remove('j_0000000000aaa')).toBe(true); // nothing of it is open
    expect(await logs.jobs()).toEqual([]);
    await logs.close();
  });

  it('keeps a log that is being written, and removes it once sealed', async () => {
    const logs = await store();
    const file = await logs.file('j_0000000000bbb', 1);
    file.append(0, 1, Buffer.from('still running'));
    await file.durable();
    await logs.file('j_0000000000ccc', 2);
    expect(await logs.jobs()).toEqual(['j_0000000000bbb', 'j_0000000000ccc']);
    expect(await logs.remove('j_0000000000bbb')).toBe(false);
    expect(await logs.jobs()).toContain('j_0000000000bbb');
    await logs.seal('j_0000000000bbb', 1);
    expect(await logs.remove('j_0000000000bbb')).toBe(true);
    expect(await logs.jobs()).toEqual(['j_0000000000ccc']);
    await expect(logs.remove('../escape')).rejects.toThrow(/bad job id/);
    await logs.close();
  });

  it.skipIf(!canMount)(
    `rolls back a write the full disk refused, and takes the same records again once there is space${canMount ? '' : ' (skipped: mounting a tmpfs needs root)'}`,
    async () => {
      const disk = await smallDisk();
      expect(disk).not.toBe('');
      const lines: string[] = [];
      const logs = new LogStore(join(disk, 'logs'), { logger: pino({}, { write: (l: string) => void lines.push(l) }) });
      const file = await logs.file('j_0000000000full', 1);
      const chunk = (seq: number): Buffer => Buffer.alloc(16 * 1024, 97 + (seq % 26));
      // Far more than fits: the burst that crosses the limit fails and is rolled back whole.
      for (let seq = 0; seq < 40; seq++) file.append(seq, 1, chunk(seq));
      const err = await file.durable().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isLogWriteError(err)).toBe(true);
      expect(logs.full).toBe(true);
      expect(logs.reason).toMatch(/no space left on device in the log directory|KiB free in the log directory/);
      const held = file.count;
      expect(held).toBeLessThan(40);
      expect(await file.durable()).toBe(held); // what is held is durable, nothing torn after it
      expect((await stat(join(disk, 'logs', 'j_0000000000full', '1.log'))).size).toBe(held * (16 * 1024 + 5));
      // Space again: the same records, sent again, are appended as if for the first time.
      spawnSync('mount', ['-o', 'remount,size=2m', disk]);
      for (let seq = held; seq < 40; seq++) expect(file.append(seq, 1, chunk(seq))).toBe(true);
      expect(await file.durable()).toBe(40);
      const got: number[] = [];
      for await (const r of logs.read('j_0000000000full', 1, 0, () => 'done', new AbortController().signal)) {
        expect(Buffer.from(r.data).equals(chunk(r.seq))).toBe(true);
        got.push(r.seq);
      }
      expect(got).toEqual(Array.from({ length: 40 }, (_, i) => i));
      await logs.close();
      expect(lines.filter((l) => l.includes('log directory is full'))).toHaveLength(1);
    },
  );

  it('ignores duplicates and refuses gaps', async () => {
    const logs = await store();
    const file = await logs.file('j_0000000000def', 1);
    expect(file.append(0, 1, Buffer.from('a'))).toBe(true);
    expect(file.append(0, 1, Buffer.from('a'))).toBe(false);
    expect(() => file.append(5, 1, Buffer.from('x'))).toThrow(/expected record 1/);
    await logs.close();
  });
});
