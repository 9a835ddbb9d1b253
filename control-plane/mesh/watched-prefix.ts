/**
 * A live, read-only copy of every key under a prefix: one range, then a watch
 * from that range's revision, so no change is missed or seen twice. When the
 * watch ends (its revision was compacted, or the store went away) the copy is
 * re-read and re-watched, with backoff, until it is closed. Membership, the
 * agent directory and the election all read the store through one of these.
 */
import type { Logger } from 'pino';
import { Backoff } from '../../transport/retry.js';
import { isCompacted } from '../store/errors.js';
import { RESYNC } from '../store/retry.js';
import type { KeyValue, Store, Watch, WatchEvent } from '../store/store.js';
import { BadRecordError } from './errors.js';

export interface WatchedPrefixOptions<T> {
  store: Store;
  prefix: string;
  /** Turns a stored key into a value; `undefined` skips the key (not ours, or unreadable). */
  parse(kv: KeyValue): T | undefined;
  logger: Logger;
}

export interface Entry<T> {
  value: T;
  kv: KeyValue;
}

export class WatchedPrefix<T> {
  private entries = new Map<string, Entry<T>>();
  /** `entries` in key order, until the next change. */
  private ordered: readonly Entry<T>[] | undefined;
  private readonly listeners = new Set<() => void>();
  private watch: Watch | undefined;
  /** Bumped by each re-read; events and errors of an older watch are dropped. */
  private generation = 0;
  private closed = false;
  private closing: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Waits between failed re-reads (store/retry.ts's RESYNC); reset by a good one. */
  private readonly resyncBackoff = new Backoff(RESYNC);

  private constructor(private readonly o: WatchedPrefixOptions<T>) {}

  /** Reads the prefix and starts watching it; rejects if the first read fails. */
  static async open<T>(options: WatchedPrefixOptions<T>): Promise<WatchedPrefix<T>> {
    const w = new WatchedPrefix(options);
    await w.sync();
    return w;
  }

  /** Entries in key order (sorted once per change: the scheduler asks every round). */
  entriesInOrder(): readonly Entry<T>[] {
    this.ordered ??= [...this.entries.values()].sort((a, b) => (a.kv.key < b.kv.key ? -1 : a.kv.key > b.kv.key ? 1 : 0));
    return this.ordered;
  }

  /** The entry at the full key `key`. */
  get(key: string): Entry<T> | undefined {
    return this.entries.get(key);
  }

  /** Calls `listener` after every applied change (and after a re-read); returns the unsubscribe. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  /** Stops watching; idempotent. The copy keeps its last contents. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.listeners.clear();
    const watch = this.watch;
    this.watch = undefined;
    await watch?.close();
  }

  private async sync(): Promise<void> {
    const res = await this.o.store.range(this.o.prefix);
    if (this.closed) return;
    const generation = ++this.generation;
    this.entries = new Map();
    this.ordered = undefined;
    for (const kv of res.kvs) this.put(this.entries, kv);
    const watch = await this.o.store.watch(
      this.o.prefix,
      { onEvents: (events) => this.apply(generation, events), onError: (err) => this.onWatchError(generation, err) },
      res.revision,
    );
    if (this.closed) return void (await watch.close());
    this.watch = watch;
    this.resyncBackoff.reset();
    this.notify();
  }

  private put(into: Map<string, Entry<T>>, kv: KeyValue): void {
    const value = this.o.parse(kv);
    if (value === undefined) into.delete(kv.key);
    else into.set(kv.key, { value, kv });
  }

  private apply(generation: number, events: WatchEvent[]): void {
    // Events can reach a watch that a re-read already replaced; only the current one counts.
    if (generation !== this.generation || this.closed) return;
    for (const e of events) {
      if (e.type === 'put') this.put(this.entries, e.kv);
      else this.entries.delete(e.key);
    }
    this.ordered = undefined;
    this.notify();
  }

  private onWatchError(generation: number, err: Error): void {
    if (this.closed || generation !== this.generation) return;
    this.generation++;
    this.watch = undefined;
    if (isCompacted(err)) this.o.logger.info({ prefix: this.o.prefix }, 'watch compacted; re-reading');
    else this.o.logger.warn({ err, prefix: this.o.prefix }, 'watch ended; re-reading');
    this.scheduleResync(0);
  }

  private scheduleResync(delayMs: number): void {
    if (this.closed) return;
    this.retryTimer = setTimeout(() => void this.resync(), delayMs);
    this.retryTimer.unref();
  }

  private async resync(): Promise<void> {
    try {
      await this.sync();
    } catch (err) {
      if (this.closed) return;
      const delay = this.resyncBackoff.next();
      this.o.logger.warn({ err, prefix: this.o.prefix, retry_ms: delay }, 'watch re-read failed');
      this.scheduleResync(delay);
    }
  }

  private notify(): void {
    for (const listener of [...this.listeners]) {
      try {
        listener();
      } catch (err) {
        this.o.logger.error({ err, prefix: this.o.prefix }, 'change listener threw');
      }
    }
  }
}

/** Which record a key holds, and the string fields it cannot do without. */
export interface RecordShape<K> {
  what: string;
  required: readonly K[];
}

/**
 * Reads a stored JSON record with `build`, for a WatchedPrefix's `parse`. One
 * that cannot be read (bad JSON, a required string field missing, or `build`
 * throws) is someone else's write: it is logged as a BadRecordError and
 * skipped, never fatal.
 */
export function parseRecord<T, K extends keyof T & string, R>(
  kv: KeyValue,
  log: Logger,
  { what, required }: RecordShape<K>,
  build: (v: Partial<T> & Record<K, string>) => R,
): R | undefined {
  try {
    const v = JSON.parse(kv.value) as Partial<T> & Record<K, unknown>;
    const missing = required.filter((k) => typeof v[k] !== 'string');
    if (missing.length > 0) throw new Error(`missing ${missing.join(' and ')}`);
    return build(v as Partial<T> & Record<K, string>);
  } catch (err) {
    log.warn({ err: new BadRecordError(kv.key, { cause: err }), record: what }, 'skipping an unreadable record');
    return undefined;
  }
}
