/** DirChanges on a real directory (inotify here): wakes on writes, and tells routine files from the rest. */
import { appendFileSync, mkdtempSync, rmSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { waitUntil } from '../../test/support/wait.js';
import { DirChanges, WATCHED_POLL_MS } from './dir-changes.js';

let dir: string;
let changes: DirChanges;
/** Names in the directory's events as a second watcher sees them: inotify hands one event to both watchers at once. */
let seen: string[];
let witness: FSWatcher;
const forever = new AbortController().signal;

/** Waits until the watchers have the events of the writes since `since`: the last write was to the spool (after `after`, if given). */
async function delivered(since: number, after?: string): Promise<void> {
  const spoolLast = (): boolean => {
    const names = seen.slice(since);
    const from = after === undefined ? 0 : names.indexOf(after);
    return from >= 0 && names.indexOf('output.spool', from) >= 0;
  };
  await waitUntil(spoolLast, { what: `an event of the spool${after ? ` after one of ${after}` : ''}`, timeoutMs: 5_000, intervalMs: 5 });
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'runmesh-dir-changes-'));
  writeFileSync(join(dir, 'output.spool'), '');
  changes = new DirChanges(dir, ['output.spool']);
  seen = [];
  witness = watch(dir, { persistent: false }, (_event, name) => seen.push(String(name)));
});
afterEach(() => {
  witness.close();
  changes.close();
  rmSync(dir, { recursive: true, force: true });
});

it('appends to a routine file say nothing else changed', async () => {
  appendFileSync(join(dir, 'output.spool'), 'x');
  appendFileSync(join(dir, 'output.spool'), 'y');
  await delivered(0);
  expect(await changes.next(forever)).toBe(false);
});

it('another file appearing, even among routine appends, says to look', async () => {
  appendFileSync(join(dir, 'output.spool'), 'x');
  writeFileSync(join(dir, 'status.json'), '{}');
  appendFileSync(join(dir, 'output.spool'), 'y');
  await delivered(0, 'status.json');
  expect(await changes.next(forever)).toBe(true);
  const mark = seen.length;
  appendFileSync(join(dir, 'output.spool'), 'z');
  await delivered(mark);
  expect(await changes.next(forever)).toBe(false); // what was seen is reset by each wait
});

it('a wait that ends with no event (the poll) says anything may have changed', async () => {
  const t0 = Date.now();
  expect(await changes.next(forever)).toBe(true);
  expect(Date.now() - t0).toBeGreaterThanOrEqual(WATCHED_POLL_MS - 5);
});
