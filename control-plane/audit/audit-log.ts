/**
 * The audit log: who did what to which job, agent or token, from where, with
 * what result, and when. `record` never blocks and never throws: an entry
 * goes to pino at once (`audit: true`) and into a buffer that is written to
 * the store in one transaction per ~50 ms, under keys that sort by time.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuditRecord, AuditSink } from '../auth/audit-sink.js';
import type { Store } from '../store/store.js';

export const AUDIT_PREFIX = '/runmesh/audit/';

/** A stored entry: the record and when it was made (RFC 3339, milliseconds). */
export interface AuditEntry extends AuditRecord {
  readonly time: string;
}

/** What the log needs of the store. */
export type AuditStore = Pick<Store, 'txn' | 'range' | 'maxTxnOps'>;

export interface AuditLogOptions {
  /** How long entries wait in the buffer for company. Default 50 ms. */
  flushMs?: number;
  /** Most entries per transaction (further capped by the store's maxTxnOps). Default 100. */
  batch?: number;
  /** Past this many unflushed entries the oldest are dropped (and counted). Default 10,000. */
  maxBuffered?: number;
  /** After a failed write, wait this long before trying again. Default 1 s. */
  retryMs?: number;
  now?: () => Date;
}

export interface AuditQuery {
  /** Only entries at or after this time. */
  since?: Date;
  /** Only this actor's entries. */
  actor?: string;
  /** At most this many. Default 100. */
  limit?: number;
  /** The `next` of a previous page. */
  pageToken?: string;
}

export interface AuditPage {
  entries: AuditEntry[];
  /** '' when there are no more. */
  next: string;
}

export class AuditLog implements AuditSink {
  private buffer: Array<{ key: string; entry: AuditEntry }> = [];
  private dropped = 0;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private closed = false;
  private readonly flushMs: number;
  private readonly batch: number;
  private readonly maxBuffered: number;
  private readonly retryMs: number;
  private readonly now: () => Date;

  constructor(
    private readonly store: AuditStore,
    private readonly log: Logger,
    options: AuditLogOptions = {},
  ) {
    this.flushMs = options.flushMs ?? 50;
    this.batch = Math.max(1, Math.min(options.batch ?? 100, store.maxTxnOps));
    this.maxBuffered = options.maxBuffered ?? 10_000;
    this.retryMs = options.retryMs ?? 1000;
    this.now = options.now ?? (() => new Date());
  }

  record(record: AuditRecord): void {
    const time = this.now().toISOString();
    const entry: AuditEntry = { time, ...record };
    this.log.info({ audit: true, ...entry }, 'audit');
    this.buffer.push({ key: keyFor(time), entry });
    if (this.buffer.length > this.maxBuffered) {
      const excess = this.buffer.length - this.maxBuffered;
      this.buffer.splice(0, excess);
      this.dropped += excess;
    }
    this.schedule(this.flushMs);
  }

  /** Entries in time order, oldest first. */
  async list(q: AuditQuery = {}): Promise<AuditPage> {
    const limit = Math.max(1, q.limit ?? 100);
    const start = q.pageToken ? AUDIT_PREFIX + q.pageToken : q.since ? AUDIT_PREFIX + q.since.toISOString() : undefined;
    const entries: AuditEntry[] = [];
    let after = start;
    for (;;) {
      const page = await this.store.range(AUDIT_PREFIX, { after, limit: Math.max(limit, 100) });
      for (const kv of page.kvs) {
        after = kv.key;
        const entry = JSON.parse(kv.value) as AuditEntry;
        if (q.actor && entry.actor !== q.actor) continue;
        entries.push(entry);
        if (entries.length === limit)
          return { entries, next: page.more || kv !== page.kvs.at(-1) ? kv.key.slice(AUDIT_PREFIX.length) : '' };
      }
      if (!page.more) return { entries, next: '' };
    }
  }

  /** Deletes entries older than `before`; returns how many. Keys sort by time, so it reads only what it deletes. */
  async deleteBefore(before: Date): Promise<number> {
    const end = AUDIT_PREFIX + before.toISOString();
    let deleted = 0;
    for (;;) {
      const page = await this.store.range(AUDIT_PREFIX, { limit: this.store.maxTxnOps });
      const old = page.kvs.filter((kv) => kv.key < end);
      if (old.length === 0) return deleted;
      await this.store.txn({ success: old.map((kv) => ({ type: 'delete' as const, key: kv.key })) });
      deleted += old.length;
      if (old.length < page.kvs.length || !page.more) return deleted;
    }
  }

  /** Writes what is buffered (trying once more if a write fails); idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.flushing;
    await this.flushAll().catch((err: unknown) => this.log.error({ err, unflushed: this.buffer.length }, 'audit entries lost at close'));
  }

  private schedule(ms: number): void {
    if (this.timer || this.flushing || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flushing = this.flushAll().then(
        () => {
          this.flushing = undefined;
          if (this.buffer.length > 0) this.schedule(this.flushMs);
        },
        (err: unknown) => {
          this.log.error({ err, unflushed: this.buffer.length }, 'audit log write failed; retrying');
          this.flushing = undefined;
          this.schedule(this.retryMs);
        },
      );
    }, ms);
    this.timer.unref();
  }

  private async flushAll(): Promise<void> {
    this.reportDrops();
    while (this.buffer.length > 0) {
      const chunk = this.buffer.slice(0, this.batch);
      await this.store.txn({ success: chunk.map(({ key, entry }) => ({ type: 'put' as const, key, value: JSON.stringify(entry) })) });
      // Entries dropped meanwhile went from the front: remove what was written by identity, not by count.
      const written = new Set(chunk);
      this.buffer = this.buffer.filter((b) => !written.has(b));
    }
  }

  private reportDrops(): void {
    if (this.dropped === 0) return;
    this.log.error({ dropped: this.dropped }, 'audit entries dropped: the store did not take them in time');
    this.dropped = 0;
  }
}

/** `/runmesh/audit/<time>-<random>`: in time order, two entries of one millisecond apart. */
const keyFor = (time: string): string => `${AUDIT_PREFIX}${time}-${randomBytes(4).toString('hex')}`;
