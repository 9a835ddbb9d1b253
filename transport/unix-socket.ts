/**
 * Unix socket housekeeping: private directories for our own sockets, and
 * clearing a socket file a crashed process left behind.
 */
import { mkdtemp, lstat, unlink, rm, chmod } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AddressInUseError, TransportError } from './errors.js';

/** How long a probe connect may take before we call the socket alive but unresponsive. */
const PROBE_TIMEOUT_MS = 2_000;

/**
 * A fresh directory only we can enter (0700), for sockets no other user may reach.
 * Unix socket paths are limited to ~104 bytes, so it sits directly under the temp dir.
 */
export async function makePrivateDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `runmesh-${prefix}-`));
  await chmod(dir, 0o700);
  return dir;
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
