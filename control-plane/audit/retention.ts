/**
 * Audit retention: while this peer leads, entries older than the retention
 * are deleted every `intervalMs` (default a minute). 0 keeps them forever.
 */
import type { Logger } from 'pino';
import type { AuditLog } from './audit-log.js';

export interface AuditRetentionDeps {
  audit: Pick<AuditLog, 'deleteBefore'>;
  logger: Logger;
  /** Entries older than this are deleted; 0 keeps them. */
  retentionMs: number;
  isLeader(): boolean;
  /** Default 60 s. */
  intervalMs?: number;
  now?: () => number;
}

export class AuditRetention {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly d: AuditRetentionDeps) {}

  start(): void {
    if (this.d.retentionMs <= 0 || this.timer) return;
    this.timer = setInterval(() => void this.sweep(), this.d.intervalMs ?? 60_000);
    this.timer.unref();
  }

  /** One pass, if this peer leads; a failure is logged and the next pass tries again. */
  sweep(): Promise<void> {
    if (this.d.retentionMs <= 0 || !this.d.isLeader() || this.running) return this.running ?? Promise.resolve();
    const cutoff = new Date((this.d.now ?? Date.now)() - this.d.retentionMs);
    this.running = this.d.audit
      .deleteBefore(cutoff)
      .then(
        (deleted) => {
          if (deleted > 0) this.d.logger.info({ deleted, before: cutoff.toISOString() }, 'old audit entries deleted');
        },
        (err: unknown) => this.d.logger.warn({ err }, 'audit retention pass failed; the next one retries'),
      )
      .finally(() => (this.running = undefined));
    return this.running;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
