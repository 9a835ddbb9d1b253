/**
 * Unix socket housekeeping: private directories for our own sockets, sweeping
 * the ones dead processes left behind, and clearing a socket file a crashed
 * process left behind.
 */
import { mkdtemp, lstat, readdir, unlink, rm, chmod } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AddressInUseError, TransportError } from './errors.js';

/** How long a probe connect may take before we call the socket alive but unresponsive. */
const PROBE_TIMEOUT_MS = 2_000;

/** A legacy private dir (before the owner's pid was in its name) counts as abandoned after this long with nothing listening in it. */
const LEGACY_MIN_AGE_MS = 60_000;

/**
 * A fresh directory only we can enter (0700), for sockets no other user may reach.
 * Unix socket paths are limited to ~104 bytes, so it sits directly under the temp dir.
 * Its name carries our pid (`runmesh-<prefix>-<pid>-XXXXXX`): a process that
 * dies without removing it (SIGKILL, a signal it does not handle) leaves a
 * directory that a later start can tell is nobody's (`sweepDeadPrivateDirs`).
 */
export async function makePrivateDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `runmesh-${prefix}-${process.pid}-`));
  await chmod(dir, 0o700);
  return dir;
}

/** `runmesh-<prefix>-<pid>-<6 chars>`, or a legacy `runmesh-<prefix>-<6 chars>` without the pid. */
const PRIVATE_DIR = /^runmesh-(tunnel|bridge)-(?:(\d{1,10})-)?[A-Za-z0-9]{6}$/;

/**
 * Removes the private socket directories (the WebSocket tunnel's and bridge's)
 * that dead processes left under `root` (default: the temp dir). One is dead
 * when the pid in its name is gone and nothing listens on a socket in it; a
 * legacy one without a pid, when nothing listens in it and it is older than a
 * minute. Only our own user's directories are looked at. Never throws: a
 * directory that cannot be read or removed is left as it was. Returns the
 * directories removed.
 */
export async function sweepDeadPrivateDirs(root = tmpdir()): Promise<string[]> {
  const names = await readdir(root).catch(() => [] as string[]);
  const removed: string[] = [];
  for (const name of names) {
    const m = PRIVATE_DIR.exec(name);
    if (!m) continue;
    const dir = join(root, name);
    if (await abandoned(dir, m[2] === undefined ? undefined : Number(m[2])).catch(() => false)) {
      await rm(dir, { recursive: true, force: true }).then(
        () => removed.push(dir),
        () => undefined,
      );
    }
  }
  return removed;
}

async function abandoned(dir: string, pid: number | undefined): Promise<boolean> {
  const st = await lstat(dir);
  if (!st.isDirectory() || st.uid !== process.getuid?.()) return false;
  if (pid !== undefined ? processExists(pid) : Date.now() - st.mtimeMs < LEGACY_MIN_AGE_MS) return false;
  // A pid seen from another pid namespace may look dead while its owner lives: a listener says otherwise.
  for (const entry of await readdir(dir, { withFileTypes: true }))
    if (entry.isSocket() && (await somethingListens(join(dir, entry.name)).catch(() => true))) return false;
  return true;
}

/** Signal 0 sends nothing: ESRCH means no such process; EPERM means one we may not signal, alive all the same. */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/**
 * Makes `path` free to bind: a socket file that nothing answers on (left by a
 * crash) is unlinked; a live listener fails with AddressInUseError; a
 * non-socket file is left alone and fails, so we never delete an operator's file.
 */
export async function clearStaleSocket(path: string): Promise<void> {
  const stats = await lstat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw new TransportError(`cannot inspect unix socket path ${path}`, { cause: err });
  });
  if (stats === null) return;
  if (!stats.isSocket()) throw new TransportError(`cannot bind unix://${path}: the path exists and is not a socket`);
  if (await somethingListens(path)) throw new AddressInUseError(`unix://${path}`);
  await unlink(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw new TransportError(`cannot remove stale unix socket ${path}`, { cause: err });
  });
}

function somethingListens(path: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    const timer = setTimeout(() => finish(true), PROBE_TIMEOUT_MS);
    function finish(listening: boolean, err?: Error): void {
      clearTimeout(timer);
      socket.destroy();
      if (err === undefined) resolve(listening);
      else reject(new TransportError(`cannot probe unix socket ${path}`, { cause: err }));
    }
    socket.once('connect', () => finish(true));
    socket.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED' || err.code === 'ENOENT') finish(false);
      else finish(false, err);
    });
  });
}
