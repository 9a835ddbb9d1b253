/**
 * Queued jobs grouped by (QoS class, tenant), each group kept in routing
 * order (priority, then age). Adds mark a group for re-sorting; removals are
 * dropped lazily: placed jobs pile up at a group's head, which a cursor steps
 * past (and cuts off once it is most of the group), so a round that looks at
 * the head of each group costs about what it returns, not the whole queue.
 */
import type { QueuedJob } from '../../routing/index.js';

const byRoutingOrder = (x: QueuedJob, y: QueuedJob): number => y.priority - x.priority || x.order - y.order;

interface Bucket {
  jobs: QueuedJob[];
  /** Every job before this index is no longer queued. */
  start: number;
  sorted: boolean;
}

/** A bucket's dead head is cut off once it is this long and most of the bucket. */
const CUT_AT = 1024;

export class QueueBuckets {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly isQueued: (job: QueuedJob) => boolean) {}

  add(job: QueuedJob): void {
    const key = `${job.qos}/${job.tenant}`;
    const b = this.buckets.get(key);
    if (!b) return void this.buckets.set(key, { jobs: [job], start: 0, sorted: true });
    // Submissions arrive in order: appending one that sorts last keeps the group sorted.
    const last = b.jobs.at(-1);
    if (last && byRoutingOrder(last, job) > 0) b.sorted = false;
    b.jobs.push(job);
  }

  /** The first `perBucket` live jobs of every group. */
  head(perBucket: number): QueuedJob[] {
    const out: QueuedJob[] = [];
    for (const [key, b] of this.buckets) {
      if (!b.sorted) {
        b.jobs = b.jobs.slice(b.start).filter(this.isQueued).sort(byRoutingOrder);
        b.start = 0;
        b.sorted = true;
      }
      const jobs = b.jobs;
      while (b.start < jobs.length && !this.isQueued(jobs[b.start]!)) b.start++;
      let taken = 0;
      let dead = 0;
      for (let i = b.start; i < jobs.length && taken < perBucket; i++) {
        const j = jobs[i]!;
        if (this.isQueued(j)) {
          out.push(j);
          taken++;
        } else dead++;
      }
      if (b.start === jobs.length) this.buckets.delete(key);
      // Jobs taken out of the middle (cancelled, or placed past a blocked head) dominate the scan: compact.
      else if (dead > taken) {
        b.jobs = jobs.slice(b.start).filter(this.isQueued);
        b.start = 0;
      } else if (b.start >= CUT_AT && b.start * 2 >= jobs.length) {
        b.jobs = jobs.slice(b.start);
        b.start = 0;
      }
    }
    return out;
  }
}
