/**
 * The attempt directory layout, shared by the executor (in the agent) and the
 * supervisor (its own process): everything an attempt needs to be found and
 * finished by a later agent process lives here.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { link, open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The attempt's progress file, in its directory: made empty before the job
 * starts, writable by the job's user, named to it as $RUNMESH_PROGRESS (in
 * the sandbox too). The agent reads it (agent/progress/).
 */
export const PROGRESS_FILE = 'progress';

export const files = (dir: string) => ({
  spec: join(dir, 'spec.json'),
  spool: join(dir, 'output.spool'),
  status: join(dir, 'status.json'),
  cancel: join(dir, 'cancel.json'),
  supervisorPid: join(dir, 'supervisor.pid'),
  jobPgid: join(dir, 'job.pgid'),
  supervisorLog: join(dir, 'supervisor.log'),
  /** When a standby supervisor took the attempt: the argument it was started with (its command line lacks the dir). */
  standby: join(dir, 'supervisor.standby'),
  /** Written once the supervisor handles cancel signals; before that a signal would kill it. */
  ready: join(dir, 'supervisor.ready'),
  work: join(dir, 'work'),
  /** The job's progress file ($RUNMESH_PROGRESS; see executor.ts). */
  progress: join(dir, PROGRESS_FILE),
  /** A job's script, run as `sh -e <file>`: passed as one argument it could not exceed Linux's 128 KiB for one argument. */
  script: join(dir, 'script.sh'),
  /**
   * Space kept for the status (written by the executor with the spec): on a
   * full disk the supervisor deletes it, and the status fits where it was.
   */
  reserve: join(dir, 'status.reserve'),
});

/** What the reserve holds: room for status.json and its temp file, whatever the block size. */
export const RESERVE_BYTES = 16 * 1024;

export type AttemptFiles = ReturnType<typeof files>;

export const STREAM_CODES = { stdout: 1, stderr: 2 } as const;

/** What cancel() leaves for the supervisor: any agent process can write it, the supervisor reads it on SIGUSR2. */
export interface CancelRequest {
  readonly grace: number;
  readonly reason: string;
  readonly at: number;
}

/**
 * Writes `path` so that readers see the old content or the whole new one,
 * never a torn file: a reader of status.json or supervisor.pid may be another
 * process at any moment. `durable` adds the fsync a status needs to survive a crash.
 */
export function writeFileAtomicSync(path: string, content: string, { durable = false }: { durable?: boolean } = {}): void {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o600); // the agent's own: a job running as another user reads none of it
  try {
    try {
      writeSync(fd, content);
      if (durable) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true }); // a full disk must not keep an empty temp file either
    throw err;
  }
}

/** writeFileAtomicSync, durable, with the wait for the disk off the main thread. */
export async function writeFileDurable(path: string, content: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(content);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** fsync of a directory (a rename in it made durable); one already gone has nothing to sync. */
export async function syncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Publishes `content` at `path` unless something is there already: the first
 * writer wins and later ones leave it be (link(2) refuses to replace), so two
 * agent processes racing to record the same fact agree on one answer.
 * Returns whether ours was the one published.
 */
export async function publishOnce(path: string, content: string): Promise<boolean> {
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    try {
      await fh.writeFile(content);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await link(tmp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}
