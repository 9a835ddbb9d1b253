/** The spool reader on hand-made spools: partial frames wait, big frames fit, skipped records are counted. */
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { encodeFrame } from '../../proto/log-frame.js';
import { SpoolReader } from './spool-reader.js';

const dir = mkdtempSync(join(tmpdir(), 'runmesh-spool-'));
const path = join(dir, 'output.spool');
afterEach(() => rmSync(path, { force: true }));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('SpoolReader', () => {
  it('waits for the rest of a partial frame instead of yielding it', async () => {
    const frame = encodeFrame(2, Buffer.from('hello world'));
    writeFileSync(path, Buffer.concat([encodeFrame(1, Buffer.from('a')), frame.subarray(0, 8)]));
    const r = await SpoolReader.open(path);
    const first = await r.read(0);
    expect(first.records.map((x) => [x.seq, x.stream, x.data.toString()])).toEqual([[0, 'stdout', 'a']]);
    expect(first.atEnd).toBe(true);
    expect((await r.read(0)).records).toEqual([]);
    appendFileSync(path, frame.subarray(8));
    expect((await r.read(0)).records.map((x) => [x.seq, x.stream, x.data.toString()])).toEqual([[1, 'stderr', 'hello world']]);
    await r.close();
  });

  it('reads a frame bigger than its block, and skips records before `from` while counting them', async () => {
    const big = Buffer.alloc(3 << 20, 7);
    writeFileSync(path, Buffer.concat([encodeFrame(1, Buffer.from('x')), encodeFrame(1, big), encodeFrame(2, Buffer.from('y'))]));
    const r = await SpoolReader.open(path);
    const got = [];
    for (let i = 0; i < 20; i++) {
      const b = await r.read(1);
      got.push(...b.records);
      if (b.atEnd && r.next === 3) break;
    }
    expect(got.map((x) => [x.seq, x.data.length])).toEqual([
      [1, big.length],
      [2, 1],
    ]);
    expect(got[0]?.data.equals(big)).toBe(true);
    await r.close();
  });
});
