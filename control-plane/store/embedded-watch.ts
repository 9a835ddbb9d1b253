/**
 * Watches for the embedded store: a bounded in-memory history of the last
 * revisions (so a watcher can resume from a recent revision) and the live
 * subscribers. Older history than `floor` is gone: watching from before it
 * fails with `CompactedError`, exactly as a compacted etcd would.
 */
import type pino from 'pino';
import { CompactedError } from './errors.js';
import type { Watch, WatchEvent, WatchHandlers } from './store.js';

interface Revision {
  revision: number;
  events: WatchEvent[];
}

export const DEFAULT_HISTORY_REVISIONS = 10_000;

export class WatchHub {
  private history: Revision[] = [];
  private readonly subscribers = new Set<Subscriber>();

  /**
   * @param floor every event after this revision is (or will be) in history:
   *   the revision at open (history does not survive a restart) or the last compaction
   */
  constructor(
    private floor: number,
    private readonly log: pino.Logger,
    private readonly maxRevisions = DEFAULT_HISTORY_REVISIONS,
  ) {}

  get compactRevision(): number {
    return this.floor;
  }

  publish(revision: number, events: WatchEvent[]): void {
    this.history.push({ revision, events });
    // Trim in chunks: shifting the whole array on every publish is O(history) per write.
    if (this.history.length > this.maxRevisions + Math.max(1, this.maxRevisions >> 2)) {
      const dropped = this.history.splice(0, this.history.length - this.maxRevisions);
      this.floor = dropped[dropped.length - 1]?.revision ?? this.floor;
    }
    for (const s of this.subscribers) s.offer(events);
  }

  /** Drops history before `revision`; its own events stay, as etcd keeps the compaction revision. */
  compact(revision: number): void {
    if (revision - 1 <= this.floor) return;
    this.floor = revision - 1;
    this.history = this.history.slice(this.firstAfter(this.floor));
  }

  /** Events after `fromRevision`; the replay and the live feed are joined in one tick, so nothing falls between. */
  subscribe(prefix: string, handlers: WatchHandlers, fromRevision: number): Watch {
    const sub = new Subscriber(prefix, handlers, this.log, () => this.subscribers.delete(sub));
    if (fromRevision < this.floor) {
      sub.fail(new CompactedError(fromRevision, this.floor));
      return sub;
    }
    for (let i = this.firstAfter(fromRevision); i < this.history.length; i++) {
      const rev = this.history[i];
      if (rev) sub.offer(rev.events);
    }
    this.subscribers.add(sub);
    return sub;
  }

  /** Ends every watch with `err` (store closing). */
  closeAll(err: Error): void {
    for (const s of [...this.subscribers]) s.fail(err);
  }

  private firstAfter(revision: number): number {
    let lo = 0;
    let hi = this.history.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.history[mid]?.revision ?? Infinity) <= revision) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** One watcher: filters by prefix, delivers each revision's events in a later microtask, never inside the writer. */
class Subscriber implements Watch {
  private queue: WatchEvent[][] = [];
  private scheduled = false;
  /** No more events are accepted (failed or closed). */
  private closed = false;
  /** The owner closed it: deliver nothing more, not even the error. */
  private stopped = false;

  constructor(
    private readonly prefix: string,
    private readonly handlers: WatchHandlers,
    private readonly log: pino.Logger,
    private readonly detach: () => void,
  ) {}

  offer(events: WatchEvent[]): void {
    const mine = events.filter((e) => (e.type === 'put' ? e.kv.key : e.key).startsWith(this.prefix));
    if (mine.length === 0 || this.closed) return;
    this.queue.push(mine);
    this.schedule();
  }

  fail(err: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.detach();
    // After whatever was already queued, like a stream that ends with an error.
    queueMicrotask(() => {
      this.flush();
      if (!this.stopped) this.handlers.onError(err);
    });
  }

  close(): Promise<void> {
    this.closed = true;
    this.stopped = true;
    this.queue = [];
    this.detach();
    return Promise.resolve();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.queue.length > 0 && !this.stopped) {
      const events = this.queue.shift();
      if (!events) break;
      try {
        this.handlers.onEvents(events);
      } catch (err) {
        this.log.error({ err }, 'watch handler threw');
      }
    }
  }
}
