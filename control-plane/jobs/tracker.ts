/**
 * The in-memory view of live (non-terminal) jobs, rebuilt from the store at
 * start and kept current by one watch. Local writes are applied at once too
 * (`apply`), ordered by mod revision so the watch echo is a no-op. Listeners
 * get every change, terminal ones included (Watch, Logs follow, scheduler).
 * When the watch is lost (compacted past it, or the store cut off long) the
 * jobs are read again and watched from there: what changed meanwhile reaches
 * the listeners as any change does (newer revisions only, so nothing twice),
 * and a live job no longer stored is a delete.
 */
import type { Logger } from 'pino';
import { JobState, type QosClass } from '../../proto/gen/runmesh/v1/job.js';
import { Backoff } from '../../transport/retry.js';
import { isCompacted } from '../store/errors.js';
import { RESYNC } from '../store/retry.js';
import type { KeyValue, Watch, WatchEvent } from '../store/store.js';
import { decodeRecord, type StoredJob } from './record.js';
import type { JobRepo, Versioned } from './repo.js';
import { isTerminal } from './state.js';

export type JobListener = (v: Versioned) => void;
export type DeleteListener = (id: string) => void;

export class JobTracker {
  private readonly live = new Map<string, Versioned>();
  /** Last revision applied per job, terminal ones included, so late echoes are dropped. */
  private readonly seen = new Map<string, number>();
  private readonly listeners = new Set<JobListener>();
  private readonly deleteListeners = new Set<DeleteListener>();
  /** Jobs this process is writing now, and the latest watch event held back for each. */
  private readonly writing = new Map<string, number>();
  private readonly heldBack = new Map<string, KeyValue>();
  /** Live jobs per state, and queued ones per QoS class, kept in step with `live` (Status reads them). */
  private readonly byState = new Map<JobState, number>();
  private readonly queuedByQos = new Map<QosClass, number>();
  private watch: Watch | undefined;
  private closed = false;
  /** Waits between failed reloads after a lost watch. */
  private readonly reloadBackoff = new Backoff(RESYNC);

  constructor(
    private readonly repo: JobRepo,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    await this.load(false);
  }

  /** Reads every job, then watches from that revision; with `tell`, the changes found go to the listeners. */
  private async load(tell: boolean): Promise<void> {
    const gone = new Set(tell ? this.live.keys() : []);
    const revision = await this.repo.loadAll((v) => {
      gone.delete(v.record.job.id);
      if (tell) this.apply(v);
      else this.take(v);
    });
    for (const id of gone) this.deleted(id, revision);
    this.log.info({ live: this.live.size, revision, deleted: gone.size }, 'jobs loaded');
    const watch = await this.repo.watch({ onEvents: (ev) => this.onEvents(ev), onError: (err) => void this.rewatch(err) }, revision);
    if (this.closed) return void (await watch.close());
    this.watch = watch;
  }

  private onEvents(events: WatchEvent[]): void {
    for (const ev of events) {
      if (ev.type === 'delete') {
        this.deleted(this.repo.idFromKey(ev.key), ev.revision);
        continue;
      }
      const id = this.repo.idFromKey(ev.kv.key);
      // Our own writes come back as echoes: skip what is applied before paying for a decode,
      // and hold back what a write in flight is about to apply (settled in endWrite).
      if ((this.seen.get(id) ?? 0) >= ev.kv.modRevision) continue;
      if (this.writing.has(id)) {
        this.heldBack.set(id, ev.kv);
        continue;
      }
      this.apply({ record: decodeRecord(ev.kv.value), modRevision: ev.kv.modRevision });
    }
  }

  /** Never rejects: a reload the store refuses is tried again until it works or we close. */
  private async rewatch(err: Error): Promise<void> {
    if (this.closed) return;
    this.log.warn({ err, compacted: isCompacted(err) }, 'job watch lost, reloading');
    await this.watch?.close();
    this.watch = undefined;
    while (!this.closed) {
      try {
        await this.load(true);
        this.reloadBackoff.reset();
        return;
      } catch (failed) {
        const ms = this.reloadBackoff.next();
        this.log.warn({ err: failed, retry_ms: ms }, 'could not reload jobs; trying again');
        await new Promise((resolve) => setTimeout(resolve, ms));
      }
    }
  }

  /** Applies a newer version of a job and tells the subscribers; older or equal revisions are ignored. */
  apply(v: Versioned): void {
    if (!this.take(v)) return;
    for (const l of this.listeners) l(v);
  }

  /** Takes a newer version of a job into the live set without telling anyone (loading); false when it was not newer. */
  private take(v: Versioned): boolean {
    const id = v.record.job.id;
    if ((this.seen.get(id) ?? 0) >= v.modRevision) return false;
    this.seen.set(id, v.modRevision);
    const before = this.live.get(id);
    if (before) this.count(before.record.job, -1);
    if (isTerminal(v.record.job.state)) this.live.delete(id);
    else {
      this.live.set(id, v);
      this.count(v.record.job, 1);
    }
    if (this.seen.size > 200_000) this.trimSeen();
    return true;
  }

  /**
   * A job's record is gone (retention, or an operator's delete). The revision
   * stays as a tombstone, so a write's answer that arrives after the delete
   * does not bring the job back.
   */
  private deleted(id: string, revision: number): void {
    if ((this.seen.get(id) ?? 0) >= revision) return;
    this.seen.set(id, revision);
    const before = this.live.get(id);
    if (before) {
      this.count(before.record.job, -1);
      this.live.delete(id);
    }
    for (const l of this.deleteListeners) l(id);
  }

  private count(job: StoredJob, by: 1 | -1): void {
    this.byState.set(job.state, (this.byState.get(job.state) ?? 0) + by);
    if (job.state !== JobState.JOB_STATE_QUEUED) return;
    const qos = job.spec.qos;
    this.queuedByQos.set(qos, (this.queuedByQos.get(qos) ?? 0) + by);
  }

  /** Live jobs per state (states with none may be absent or 0). */
  countsByState(): ReadonlyMap<JobState, number> {
    return this.byState;
  }

  /** Queued jobs per QoS class (unset counts as standard). */
  queuedCount(qos: QosClass): number {
    return this.queuedByQos.get(qos) ?? 0;
  }

  private trimSeen(): void {
    for (const id of this.seen.keys()) {
      if (this.seen.size <= 100_000) break;
      if (!this.live.has(id)) this.seen.delete(id);
    }
  }

  /** Marks a local write of `id` in flight (see JobWriter). */
  beginWrite(id: string): void {
    this.writing.set(id, (this.writing.get(id) ?? 0) + 1);
  }

  /** Ends a local write; a held-back event newer than what was applied is applied now. */
  endWrite(id: string): void {
    const n = (this.writing.get(id) ?? 1) - 1;
    if (n > 0) return void this.writing.set(id, n);
    this.writing.delete(id);
    const kv = this.heldBack.get(id);
    this.heldBack.delete(id);
    if (kv && (this.seen.get(id) ?? 0) < kv.modRevision) this.apply({ record: decodeRecord(kv.value), modRevision: kv.modRevision });
  }

  get(id: string): Versioned | undefined {
    return this.live.get(id);
  }

  values(): IterableIterator<Versioned> {
    return this.live.values();
  }

  get size(): number {
    return this.live.size;
  }

  subscribe(listener: JobListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Called with the id of each job whose record is deleted while we watch. */
  onDeleted(listener: DeleteListener): () => void {
    this.deleteListeners.add(listener);
    return () => this.deleteListeners.delete(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
    this.deleteListeners.clear();
    await this.watch?.close();
  }
}
