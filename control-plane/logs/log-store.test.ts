/** The log blob store on a real disk: resumable reads, and sealing never pulls a file from under a reader. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LogStore } from './log-store.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

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

  it('ignores duplicates and refuses gaps', async () => {
    const logs = await store();
    const file = await logs.file('j_0000000000def', 1);
    expect(file.append(0, 1, Buffer.from('a'))).toBe(true);
    expect(file.append(0, 1, Buffer.from('a'))).toBe(false);
    expect(() => file.append(5, 1, Buffer.from('x'))).toThrow(/expected record 1/);
    await logs.close();
  });
});
