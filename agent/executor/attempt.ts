/**
 * A handle on one attempt directory, usable by whichever agent process holds
 * it: the one that started it or a later one after a restart.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { readFile, rm, writeFile, rename } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { AttemptHandle, ExitStatus, LogRecord } from './executor.js';
import { files } from './files.js';
import { SpoolReader } from './spool-reader.js';

const POLL_MS = 25;
const LIVENESS_EVERY_MS = 500;

export class LocalAttempt implements AttemptHandle {
  private readonly f: ReturnType<typeof files>;
  private status: ExitStatus | undefined;
  private exitWatch: Promise<ExitStatus> | undefined;

  constructor(
    readonly jobId: string,
    readonly attempt: number,
    readonly dir: string,
    private readonly log: Logger,
  ) {
    this.f = files(dir);
  }

  private async readStatus(): Promise<ExitStatus | undefined> {
    if (this.status) return this.status;
    try {
      this.status = JSON.parse(await readFile(this.f.status, 'utf8')) as ExitStatus;
    } catch {
      return undefined;
    }
    return this.status;
  }

  async *records(fromSeq: number, signal: AbortSignal): AsyncGenerator<LogRecord> {
    const reader = await SpoolReader.open(this.f.spool);
    try {
      while (!signal.aborted) {
        const batch = await reader.read();
        for (const r of batch) if (r.seq >= fromSeq) yield r;
        if (batch.length > 0) continue;
        const s = await this.readStatus();
        if (s && reader.next >= s.records) return;
        await sleep(POLL_MS, signal);
      }
    } finally {
      await reader.close();
    }
  }

  exited(): Promise<ExitStatus> {
    return (this.exitWatch ??= this.watchExit());
  }

  private async watchExit(): Promise<ExitStatus> {
    let lastCheck = 0;
    for (;;) {
      const s = await this.readStatus();
      if (s) return s;
      if (Date.now() - lastCheck > LIVENESS_EVERY_MS) {
        lastCheck = Date.now();
        if (!this.supervisorAlive()) {
          // A status may have landed between our read and the liveness check.
          const late = await this.readStatus();
          return late ?? (await this.markLost());
        }
      }
      await sleep(POLL_MS * 2);
    }
  }

  private supervisorPid(): number | undefined {
    try {
      const pid = Number(readFileSync(this.f.supervisorPid, 'utf8'));
      return pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /** Alive, and really our supervisor (not a recycled pid). */
  private supervisorAlive(): boolean {
    const pid = this.supervisorPid();
    if (!pid) return this.justStarted(); // start() writes the pid right after spawning
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return cmdline.includes('supervisor.js') && cmdline.includes(this.dir) && !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
    } catch {
      return false;
    }
  }

  private justStarted(): boolean {
    try {
      return Date.now() - statSync(this.f.spec).mtimeMs < 10_000;
    } catch {
      return false;
    }
  }

  /** The supervisor died without a status: the host lost the job. Recorded so the answer is stable. */
  private async markLost(): Promise<ExitStatus> {
    let records = 0;
    const reader = await SpoolReader.open(this.f.spool).catch(() => undefined);
    if (reader) {
      while ((await reader.read()).length > 0);
      records = reader.next;
      await reader.close();
    }
    const now = Date.now();
    const status: ExitStatus = { exitCode: -1, failure: 'agent_lost', message: 'the supervisor died before the job finished', startedAt: now, finishedAt: now, records };
    await writeFile(`${this.f.status}.tmp`, JSON.stringify(status));
    await rename(`${this.f.status}.tmp`, this.f.status);
    this.status = status;
    this.log.warn('attempt lost: supervisor gone without a status');
    return status;
  }

  async cancel(graceSeconds: number, reason: string): Promise<void> {
    if (await this.readStatus()) return;
    await writeFile(this.f.cancel, JSON.stringify({ grace: graceSeconds, reason, at: Date.now() }));
    const pid = this.supervisorPid();
    if (pid && this.supervisorAlive()) {
      // Before `ready` the supervisor reads cancel.json itself; a signal then would kill it.
      if (existsSync(this.f.ready)) process.kill(pid, 'SIGUSR2');
      this.log.info({ grace_s: graceSeconds, reason }, 'cancel sent to the supervisor');
      return;
    }
    // No supervisor to ask: take the job's group down ourselves.
    const pgid = Number(await readFile(this.f.jobPgid, 'utf8').catch(() => '0'));
    if (pgid > 0) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }

  async remove(): Promise<void> {
    if (!(await this.readStatus())) throw new Error(`attempt ${this.jobId}.${this.attempt} is still running; cancel it first`);
    await rm(this.dir, { recursive: true, force: true });
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
