/**
 * The one way in-process code changes a job: a fenced read-modify-write whose
 * result is applied to the tracker at once. A lost race (someone else moved
 * the job on) is not an error: the caller gets undefined, as for a no-op.
 */
import type { Logger } from 'pino';
import type { Compare } from '../store/store.js';
import { isNotLeader, isStaleWrite } from './errors.js';
import type { JobRecord } from './record.js';
import type { JobRepo, Mutator } from './repo.js';
import type { JobTracker } from './tracker.js';

export class JobWriter {
  /**
   * @param fence compares every write must also pass (a leader's term); it
   *   throws when this writer may not write at all (no longer leader).
   */
  constructor(
    private readonly repo: JobRepo,
    private readonly tracker: JobTracker,
    private readonly log: Logger,
    private readonly fence?: () => Compare[],
  ) {}

  /** Applies `mutate`; returns the stored record, or undefined when nothing was written. */
  async write(id: string, mutate: Mutator): Promise<JobRecord | undefined> {
    this.tracker.beginWrite(id);
    try {
      let changed = false;
      const v = await this.repo.update(id, (r) => (changed = mutate(r) !== false), this.tracker.get(id), this.fence);
      if (!changed) return undefined;
      this.tracker.apply(v);
      return v.record;
    } catch (err) {
      if (isNotLeader(err)) this.log.debug({ job_id: id }, 'write refused: not the leader');
      else if (!isStaleWrite(err)) this.log.error({ err, job_id: id }, 'job write failed');
      return undefined;
    } finally {
      this.tracker.endWrite(id);
    }
  }
}
