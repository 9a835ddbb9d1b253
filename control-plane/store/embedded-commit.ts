/**
 * Group commit for the embedded store. Transactions queue here; everything that
 * arrives while the previous batch is being written (or in the same tick) goes
 * into the next lmdb write transaction, so N small transactions cost one fsync,
 * not N. Each keeps its own compare semantics: they are evaluated one after the
 * other against the committed state plus the writes ahead of them in the batch.
 */
import type { Database, RootDatabase } from 'lmdb';
import type pino from 'pino';
import { IGNORE_COMMITS, secondsSince, type CommitObserver } from './commit-observer.js';
import { BatchView, type Outcome, type Stored } from './embedded-txn.js';
import type { WatchEvent } from './store.js';

/** A commit (one fsync) taking this long is logged. */
const SLOW_COMMIT_MS = 1000;

/** One queued transaction: applied synchronously to the view at a candidate revision. */
export type Apply = (view: BatchView, revision: number) => Outcome;

export interface Committed extends Outcome {
  /** Store revision after this transaction. */
  revision: number;
}

interface Entry {
  apply: Apply;
  resolve(c: Committed): void;
  reject(err: unknown): void;
}

export interface CommitDbs {
  root: RootDatabase;
  kv: Database<Stored, string>;
  meta: Database<number, string>;
  /** key -> lease id, for every key put with a lease: the sweep on open reads it. */
  leased: Database<number, string>;
}

export const META_REVISION = 'revision';

export class CommitQueue {
  private pending: Entry[] = [];
  private running: Promise<void> | undefined;

  /**
   * @param revision committed store revision at open
   * @param publish called with each writing transaction's events, in revision order, after commit
   */
  constructor(
    private readonly dbs: CommitDbs,
    private revision: number,
    private readonly publish: (revision: number, events: WatchEvent[]) => void,
    private readonly log: pino.Logger,
    /** Told of each lmdb write: its duration and how many transactions it carried. */
    private readonly observe: CommitObserver = IGNORE_COMMITS,
  ) {}

  /** Committed revision (what reads observe). */
  get current(): number {
    return this.revision;
  }

  enqueue(apply: Apply): Promise<Committed> {
    return new Promise<Committed>((resolve, reject) => {
      this.pending.push({ apply, resolve, reject });
      // setImmediate lets every txn issued in this tick join the batch.
      this.running ??= new Promise<void>((done) => setImmediate(done)).then(() => this.drain());
    });
  }

  /** Resolves when everything queued so far is committed (or failed). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending;
      this.pending = [];
      await this.commit(batch);
    }
    this.running = undefined;
  }

  private async commit(batch: Entry[]): Promise<void> {
    const view = new BatchView(this.dbs.kv);
    const results: Array<{ entry: Entry; committed?: Committed; error?: unknown }> = [];
    let revision = this.revision;
    for (const entry of batch) {
      try {
        const outcome = entry.apply(view, revision + 1);
        if (outcome.events.length > 0) revision += 1;
        results.push({ entry, committed: { ...outcome, revision } });
      } catch (error) {
        results.push({ entry, error });
      }
    }
    const started = performance.now();
    try {
      if (view.writes.size > 0) await this.dbs.root.transaction(() => this.write(view, revision));
      const took = Math.round(performance.now() - started);
      // A batch of reads only (every compare failed, nothing written) cost no write: not a commit.
      if (view.writes.size > 0) this.observe({ seconds: secondsSince(started), txns: batch.length, ok: true });
      // A disk that stalls its fsync stalls every write of the mesh: say so, it is what an operator must look at.
      if (took >= SLOW_COMMIT_MS)
        this.log.warn({ took_ms: took, txns: batch.length, keys: view.writes.size }, 'store commit slow: the disk took this long to sync');
    } catch (err) {
      this.observe({ seconds: secondsSince(started), txns: batch.length, ok: false });
      this.log.error({ err, txns: batch.length }, 'store commit failed');
      for (const r of results) r.entry.reject(err);
      return;
    }
    this.revision = revision;
    for (const r of results) {
      if (r.committed === undefined) {
        r.entry.reject(r.error);
        continue;
      }
      if (r.committed.events.length > 0) this.publish(r.committed.revision, r.committed.events);
      r.entry.resolve(r.committed);
    }
  }

  private write(view: BatchView, revision: number): void {
    const { kv, leased, meta } = this.dbs;
    for (const [key, stored] of view.writes) {
      if (stored) void kv.put(key, stored);
      else void kv.remove(key);
      if (stored && stored.l !== 0) void leased.put(key, stored.l);
      else void leased.remove(key);
    }
    void meta.put(META_REVISION, revision);
  }
}
