/**
 * The one way in-process code changes a job: a fenced read-modify-write whose
 * result is applied to the tracker at once. A lost race (someone else moved
 * the job on) is not an error: the caller gets undefined, as for a no-op.
 *
 * A peer has two, named for what each may write: `forAnyPeer` (agents'
 * reports, clients' cancels: fenced on the job's own record) and `forLeader`
 * (the scheduler's placements, re-queues and lost attempts: also fenced on the
 * leader's term, so a deposed leader's write fails).
 */
import type { Logger } from 'pino';
import type { Compare } from '../store/store.js';
import { JOB_WRITE, retryStore } from '../store/retry.js';
import { isGroupFull, isJobNotFound, isNotLeader, isStaleWrite } from './errors.js';
import type { JobRecord } from './record.js';
import type { Created, Guard, JobRepo, Mutator, Versioned } from './repo.js';
import type { JobTracker } from './tracker.js';

/** What a writer writes through. */
export interface JobWriterDeps {
  repo: JobRepo;
  tracker: JobTracker;
  logger: Logger;
}

const noFence = (): Compare[] => [];

export class JobWriter {
  private readonly repo: JobRepo;
  private readonly tracker: JobTracker;
  private readonly log: Logger;

  private constructor(
    d: JobWriterDeps,
    /** Compares every write must also pass; throws when this writer may not write at all. */
    private readonly fence: () => Compare[],
  ) {
    this.repo = d.repo;
    this.tracker = d.tracker;
    this.log = d.logger;
  }

  /** Writes any peer may make: each is fenced on the job's own record (its mod revision, its attempt). */
  static forAnyPeer(d: JobWriterDeps): JobWriter {
    return new JobWriter(d, noFence);
  }

  /**
   * The scheduler's writes: each is also fenced on the leader's term. `fence`
   * returns the compares that hold while this peer leads, and throws
   * NotLeaderError when it does not.
   */
  static forLeader(d: JobWriterDeps, fence: () => Compare[]): JobWriter {
    return new JobWriter(d, fence);
  }

  /**
   * Applies `mutate`; returns the stored record, or undefined when nothing was
   * written. `guard` adds compares and writes (a concurrency group's slot).
   */
  async write(id: string, mutate: Mutator, guard?: Guard): Promise<JobRecord | undefined> {
    this.tracker.beginWrite(id);
    try {
      return await this.writeOnce(id, mutate, guard);
    } catch (err) {
      if (isNotLeader(err)) this.log.debug({ job_id: id }, 'write refused: not the leader');
      else if (isGroupFull(err)) this.log.debug({ job_id: id, reason: (err as Error).message }, 'write refused: concurrency group full');
      // A job that is not there (an unknown id, or deleted after its retention) is the caller's answer, not a failure.
      else if (isJobNotFound(err)) this.log.debug({ job_id: id }, 'write skipped: no such job');
      else if (!isStaleWrite(err)) this.log.error({ err, job_id: id }, 'job write failed');
      return undefined;
    } finally {
      this.tracker.endWrite(id);
    }
  }

  /**
   * Stores drafted QUEUED records as they are (new keys: nothing to fence) and
   * applies them. Marked as local writes, so a watch echo that beats the
   * answer is not decoded and applied a second time.
   */
  async create(records: readonly JobRecord[]): Promise<Created[]> {
    if (records.length === 0) return [];
    for (const r of records) this.tracker.beginWrite(r.job.id);
    try {
      const stored = await this.repo.storeNew(records);
      for (const v of stored) this.tracker.apply(v);
      return stored;
    } finally {
      for (const r of records) this.tracker.endWrite(r.job.id);
    }
  }

  /**
   * Stores a new record that has already moved on (assigned at submit), fenced
   * on its key not existing and on this writer's fence; undefined when refused
   * or failed (the caller stores it plainly instead).
   */
  async insert(record: JobRecord): Promise<Versioned | undefined> {
    const id = record.job.id;
    this.tracker.beginWrite(id);
    try {
      const v = await this.repo.insert(record, this.fence());
      if (v) this.tracker.apply(v);
      return v;
    } catch (err) {
      if (isNotLeader(err)) this.log.debug({ job_id: id }, 'insert refused: not the leader');
      else this.log.warn({ err, job_id: id }, 'fenced insert failed');
      return undefined;
    } finally {
      this.tracker.endWrite(id);
    }
  }

  /** One fenced write, retried while the store is briefly unavailable (store/retry.ts's JOB_WRITE). */
  private async writeOnce(id: string, mutate: Mutator, guard?: Guard): Promise<JobRecord | undefined> {
    return retryStore(
      async () => {
        let changed = false;
        const v = await this.repo.update(id, (r) => (changed = mutate(r) !== false), this.tracker.get(id), this.fence, guard);
        if (!changed) return undefined;
        this.tracker.apply(v);
        return v.record;
      },
      JOB_WRITE,
      (_err, waitMs) => this.log.warn({ job_id: id, retry_in_ms: waitMs }, 'store unavailable, retrying job write'),
    );
  }
}
