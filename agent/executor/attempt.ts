/**
 * A handle on one attempt directory, usable by whichever agent process holds
 * it: the one that started it or a later one after a restart. Everything goes
 * through the directory (spool, status.json, cancel.json) and signals to the
 * supervisor's pid, never through state held by the process that started it.
 */
import { existsSync, statSync } from 'node:fs';
import { readFile, rm, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Logger } from 'pino';
import { isDiskFull } from '../../proto/disk-space.js';
import { DirChanges } from './dir-changes.js';
import { AttemptRunningError } from './errors.js';
import type { AttemptHandle, ExitStatus, LogRecord } from './executor.js';
import { files, publishOnce, type AttemptFiles, type CancelRequest } from './files.js';
import { AttemptCgroup } from './cgroup.js';
import type { SpecFile } from './host.js';
import { isSupervisor, killJobGroup } from './liveness.js';
import { SpoolReader } from './spool-reader.js';

/** How often exited() asks /proc whether the supervisor is still there. */
const LIVENESS_EVERY_MS = 500;
/**
 * A directory without supervisor.pid counts as starting for this long: start()
 * writes the pid right after the spawn and the supervisor on boot, so only an
 * agent killed in between, with a supervisor that never booted, leaves none.
 */
const BOOT_GRACE_MS = 10_000;

export interface AttemptPlace {
  readonly jobId: string;
  readonly attempt: number;
  readonly dir: string;
  readonly log: Logger;
  /** Called once the directory is gone, so the executor forgets the handle. */
  readonly onRemoved: () => void;
  /** Told of a write that failed for a full disk (the agent stops taking work). */
  readonly onDiskFull: (err: unknown) => void;
}

export class LocalAttempt implements AttemptHandle {
  readonly jobId: string;
  readonly attempt: number;
  readonly dir: string;
  private readonly f: AttemptFiles;
  private readonly log: Logger;
  private status: ExitStatus | undefined;
  private exitWatch: Promise<ExitStatus> | undefined;

  constructor(private readonly place: AttemptPlace) {
    this.jobId = place.jobId;
    this.attempt = place.attempt;
    this.dir = place.dir;
    this.log = place.log;
    this.f = files(place.dir);
  }

  async *records(fromSeq: number, signal: AbortSignal): AsyncGenerator<LogRecord> {
    const reader = await this.openSpool();
    if (!reader) return;
    const changes = new DirChanges(this.dir, [basename(this.f.spool)]);
    try {
      // Once the status is seen, one more pass to the end yields what was written before it.
      let final = false;
      let statusMayBeThere = true;
      while (!signal.aborted) {
        const { records, atEnd } = await reader.read(fromSeq);
        for (const r of records) {
          if (signal.aborted) return;
          yield r;
        }
        if (!atEnd) continue;
        if (final) return this.checkComplete(reader.next);
        if (statusMayBeThere && (await this.readStatus())) final = true;
        else statusMayBeThere = await changes.next(signal);
      }
    } finally {
      changes.close();
      await reader.close();
    }
  }

  private async openSpool(): Promise<SpoolReader | undefined> {
    try {
      return await SpoolReader.open(this.f.spool);
    } catch (err) {
      // An attempt lost before its spool existed has a status and nothing to read.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && (await this.readStatus())) return undefined;
      throw err;
    }
  }

  private checkComplete(read: number): void {
    const expected = this.status?.records ?? read;
    if (read < expected) this.log.error({ read, expected }, 'spool holds fewer records than the status says');
  }

  exited(): Promise<ExitStatus> {
    return (this.exitWatch ??= this.watchExit());
  }

  private async watchExit(): Promise<ExitStatus> {
    const changes = new DirChanges(this.dir, [basename(this.f.spool)]);
    const forever = new AbortController().signal;
    try {
      let checkedAt = 0;
      let statusMayBeThere = true;
      for (;;) {
        const s = statusMayBeThere ? await this.readStatus() : undefined;
        if (s) return this.logExit(s);
        if (Date.now() - checkedAt >= LIVENESS_EVERY_MS) {
          checkedAt = Date.now();
          // A status may land between our read and the liveness check: read again before calling it lost.
          if (!(await this.supervisorAlive())) return this.logExit((await this.readStatus()) ?? (await this.markLost()));
        }
        statusMayBeThere = await changes.next(forever);
      }
    } finally {
      changes.close();
    }
  }

  private logExit(s: ExitStatus): ExitStatus {
    this.log.info({ exit_code: s.exitCode, failure: s.failure, records: s.records }, 'attempt exited');
    return s;
  }

  private async readStatus(): Promise<ExitStatus | undefined> {
    if (this.status) return this.status;
    // Asked on every poll of every running attempt: a failed open costs an Error with its stack, a stat does not.
    if (!existsSync(this.f.status)) return undefined;
    try {
      this.status = JSON.parse(await readFile(this.f.status, 'utf8')) as ExitStatus;
    } catch {
      return undefined; // not there yet (it is renamed into place whole, so never half there)
    }
    return this.status;
  }

  private async supervisorPid(): Promise<number | undefined> {
    const pid = Number(await readFile(this.f.supervisorPid, 'utf8').catch(() => ''));
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  }

  private async jobPgid(): Promise<number> {
    const pgid = Number(await readFile(this.f.jobPgid, 'utf8').catch(() => ''));
    return Number.isInteger(pgid) && pgid > 0 ? pgid : 0;
  }

  private async supervisorAlive(): Promise<boolean> {
    const pid = await this.supervisorPid();
    return pid === undefined ? this.booting() : isSupervisor(pid, this.dir);
  }

  private booting(): boolean {
    try {
      return Date.now() - statSync(this.dir).mtimeMs < BOOT_GRACE_MS;
    } catch {
      return false;
    }
  }

  /**
   * The supervisor died without a status: the host lost the job. Whatever is
   * left of the job goes (no orphans), and the verdict is published once, so
   * every later question gets the same answer.
   */
  private async markLost(): Promise<ExitStatus> {
    if (await this.killOrphans()) this.log.warn('killed the job a lost supervisor left behind');
    const now = Date.now();
    const lost: ExitStatus = {
      exitCode: -1,
      failure: 'agent_lost',
      message: 'the supervisor died before the job finished',
      startedAt: await mtime(this.f.ready, now),
      finishedAt: now,
      records: await countRecords(this.f.spool),
    };
    try {
      if (await publishOnce(this.f.status, JSON.stringify(lost))) this.log.warn('attempt lost: supervisor gone without a status');
    } catch (err) {
      if (!isDiskFull(err)) throw err;
      // The verdict cannot be kept on disk: this process keeps it, and a later one finds the same facts.
      this.place.onDiskFull(err);
      this.log.warn({ err: (err as Error).message }, 'attempt lost: supervisor gone without a status (not saved: disk full)');
      this.status = { ...lost, message: `${lost.message}; no space left on device in the agent's work dir` };
    }
    return (await this.readStatus()) ?? lost;
  }

  async cancel(graceSeconds: number, reason: string): Promise<void> {
    if (await this.readStatus()) return; // already exited: nothing to stop
    const request: CancelRequest = { grace: graceSeconds, reason, at: Date.now() };
    // The first request's grace and reason hold. On a full disk there is no
    // request file: SIGTERM tells the supervisor to stop the job with its spec's grace.
    const written = await publishOnce(this.f.cancel, JSON.stringify(request)).then(
      () => true,
      (err: unknown) => {
        if (!isDiskFull(err)) throw err;
        this.place.onDiskFull(err);
        return false;
      },
    );
    const pid = await this.supervisorPid();
    if (pid !== undefined && isSupervisor(pid, this.dir)) {
      // Before `ready` a signal would kill it; it reads cancel.json itself once the job runs.
      if (existsSync(this.f.ready)) signal(pid, written ? 'SIGUSR2' : 'SIGTERM');
      this.log.info({ grace_s: graceSeconds, reason }, 'cancel sent to the supervisor');
      return;
    }
    if (pid === undefined && this.booting()) return;
    // No supervisor to ask: take the job down ourselves; exited() reports the attempt lost.
    if (await this.killOrphans()) this.log.warn('cancel: killed the job of a lost supervisor');
  }

  /**
   * Kills what a dead supervisor left of its job: its group, and its cgroup
   * (which holds whatever left the group), removed once empty. True if
   * anything was there to kill.
   */
  private async killOrphans(): Promise<boolean> {
    const killed = killJobGroup(await this.jobPgid(), this.f.work);
    const spec = await readFile(this.f.spec, 'utf8').then(
      (t) => JSON.parse(t) as Partial<SpecFile>,
      () => undefined,
    );
    if (!spec?.host || spec.host.cgroup.mode === 'none') return killed;
    const cg = AttemptCgroup.open(spec.host.cgroup, `${this.jobId}.${this.attempt}`);
    if (!cg) return killed;
    const there = cg.populated();
    try {
      await cg.kill();
      cg.remove();
    } catch (err) {
      this.log.error({ err }, "could not empty a lost attempt's cgroup");
    }
    return killed || there;
  }

  /** Deletes the workspace of an attempt that has exited (its spool stays until the result is acknowledged): space for a full disk. */
  async dropWorkspace(): Promise<boolean> {
    if (!(await this.readStatus()) || !existsSync(this.f.work)) return false;
    await rm(this.f.work, { recursive: true, force: true });
    return true;
  }

  async remove(): Promise<void> {
    if (!(await this.readStatus())) throw new AttemptRunningError(this.jobId, this.attempt);
    await rm(this.dir, { recursive: true, force: true });
    this.place.onRemoved();
    this.log.info('attempt removed');
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // it exited between the check and the signal: its status says how
  }
}

async function mtime(path: string, fallback: number): Promise<number> {
  return stat(path).then(
    (s) => Math.floor(s.mtimeMs),
    () => fallback,
  );
}

/** Complete records in a spool nobody writes to any more. */
async function countRecords(path: string): Promise<number> {
  const reader = await SpoolReader.open(path).catch(() => undefined);
  if (!reader) return 0;
  try {
    while (!(await reader.read(Number.MAX_SAFE_INTEGER)).atEnd);
    return reader.next;
  } finally {
    await reader.close();
  }
}
