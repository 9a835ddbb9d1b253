/**
 * A peer's data dir: owned by one process at a time, and where the peer's
 * stable id is kept.
 *
 * The lock is `<data-dir>/lock`, created exclusively, holding the owner's pid
 * and the kernel's start time of that pid (so a pid reused after a crash or a
 * reboot is not mistaken for the owner). A second process finds a live owner
 * and refuses to start before it touches anything else; a lock left by a dead
 * process is taken over, and said so.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { open, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { NamedError } from '../proto/cause.js';

export const LOCK_FILE = 'lock';
export const PEER_ID_FILE = 'peer-id';

/** Another live process owns the data dir. */
export class DataDirInUseError extends NamedError {}

interface LockRecord {
  pid: number;
  /** The pid's start time in clock ticks since boot (/proc/<pid>/stat field 22); '' where /proc is not available. */
  started: string;
  host: string;
  since: string;
}

export interface DataDirLock {
  /** Removes the lock if it is still ours. */
  release(): Promise<void>;
}

/** Takes `<dir>/lock` for this process, or throws DataDirInUseError naming the owner. */
export async function lockDataDir(dir: string, log: Logger): Promise<DataDirLock> {
  const path = join(dir, LOCK_FILE);
  const mine: LockRecord = { pid: process.pid, started: startTime(process.pid), host: hostname(), since: new Date().toISOString() };
  for (let tries = 0; tries < 3; tries++) {
    try {
      const fh = await open(path, 'wx', 0o600);
      try {
        await fh.writeFile(`${JSON.stringify(mine)}\n`);
        await fh.sync();
      } finally {
        await fh.close();
      }
      return { release: () => releaseIfOurs(path, mine) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = await readLock(path);
    if (owner && owns(owner)) {
      const who = owner.pid === process.pid ? 'this process' : `pid ${owner.pid}`;
      throw new DataDirInUseError(
        `data dir ${dir} is in use by ${who} (since ${owner.since}): stop it first, or give this one another --data-dir`,
      );
    }
    log.warn({ lock: path, owner }, 'taking over the data dir lock of a process that is gone');
    await rm(path, { force: true });
  }
  throw new DataDirInUseError(`data dir ${dir}: could not take ${path} (another process keeps taking it)`);
}

/**
 * This peer's id: the one kept in `<dir>/peer-id`, or a new one (host name
 * and 6 random hex digits) saved there. Stable across restarts, so what the
 * store says this peer holds (logs, for one) stays its own.
 */
export async function stablePeerId(dir: string): Promise<string> {
  const path = join(dir, PEER_ID_FILE);
  const saved = (
    await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? '' : Promise.reject(err)))
  ).trim();
  if (saved) return saved;
  const id = `${hostname()}-${randomBytes(3).toString('hex')}`;
  await writeFile(path, `${id}\n`, { mode: 0o644 });
  return id;
}

async function readLock(path: string): Promise<LockRecord | undefined> {
  try {
    const v = JSON.parse(await readFile(path, 'utf8')) as Partial<LockRecord>;
    if (typeof v.pid !== 'number') return undefined;
    return { pid: v.pid, started: String(v.started ?? ''), host: String(v.host ?? ''), since: String(v.since ?? '') };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if (err instanceof SyntaxError) return undefined; // half-written by a process that died: nobody's
    throw err;
  }
}

/** True when the lock's owner is a live process on this host (the same pid, started at the same time). */
function owns(owner: LockRecord): boolean {
  if (owner.host !== hostname()) return true; // a shared filesystem: we cannot tell, so it is not ours to take
  if (!alive(owner.pid)) return false;
  const started = startTime(owner.pid);
  return owner.started === '' || started === '' || started === owner.started;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The kernel's start time of `pid` (clock ticks since boot), '' when unknown. */
function startTime(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  } catch {
    return '';
  }
}

async function releaseIfOurs(path: string, mine: LockRecord): Promise<void> {
  const owner = await readLock(path).catch(() => undefined);
  if (owner?.pid === mine.pid && owner.started === mine.started) await rm(path, { force: true });
}
