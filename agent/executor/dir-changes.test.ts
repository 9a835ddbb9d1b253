/** DirChanges on a real directory (inotify here): wakes on writes, and tells routine files from the rest. */
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { DirChanges, POLL_MS } from './dir-changes.js';

let dir: string;
let changes: DirChanges;
const forever = new AbortController().signal;
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 50));

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'runmesh-dir-changes-'));
  writeFileSync(join(dir, 'output.spool'), '');
  changes = new DirChanges(dir, ['output.spool']);
});
afterEach(() => {
  changes.close();
  rmSync(dir, { recursive: true, force: true });
});

it('appends to a routine file say nothing else changed', async () => {
  appendFileSync(join(dir, 'output.spool'), 'x');
  appendFileSync(join(dir, 'output.spool'), 'y');
  await settle();
  expect(await changes.next(forever)).toBe(false);
});

it('another file appearing, even among routine appends, says to look', async () => {
  appendFileSync(join(dir, 'output.spool'), 'x');
  writeFileSync(join(dir, 'status.json'), '{}');
  appendFileSync(join(dir, 'output.spool'), 'y');
  await settle();
  expect(await changes.next(forever)).toBe(true);
  appendFileSync(join(dir, 'output.spool'), 'z');
  await settle();
  expect(await changes.next(forever)).toBe(false); // what was seen is reset by each wait
});

it('a wait that ends with no event (the poll) says anything may have changed', async () => {
  const t0 = Date.now();
  expect(await changes.next(forever)).toBe(true);
  expect(Date.now() - t0).toBeGreaterThanOrEqual(POLL_MS - 5);
});
