/**
 * Queued jobs grouped by (QoS class, tenant), each group kept in routing
 * order (priority, then age). Adds mark a group for re-sorting; removals are
 * dropped lazily, so a round that looks at the head of each group costs
 * about what it returns, not the whole queue.
 */
import type { QueuedJob } from '../../routing/index.js';

const byRoutingOrder = (x: QueuedJob, y: QueuedJob): number => y.priority - x.priority || x.order - y.order;

export class QueueBuckets {
  private readonly buckets = new Map<string, QueuedJob[]>();
  private readonly unsorted = new Set<string>();

  constructor(private readonly isQueued: (job: QueuedJob) => boolean) {}

  add(job: QueuedJob): void {
    const key = `${job.qos}/${job.tenant}`;
    const b = this.buckets.get(key);
    if (!b) return void this.buckets.set(key, [job]);
    // Submissions arrive in order: appending one that sorts last keeps the group sorted.
    const last = b.at(-1);
    if (last && byRoutingOrder(last, job) > 0) this.unsorted.add(key);
    b.push(job);
  }

  /** The first `perBucket` live jobs of every group. */
  head(perBucket: number): QueuedJob[] {
    const out: QueuedJob[] = [];
    for (const [key, b] of this.buckets) {
      let live = b;
      if (this.unsorted.delete(key)) {
        live = b.filter(this.isQueued).sort(byRoutingOrder);
        this.buckets.set(key, live);
      }
      let taken = 0;
      let dead = 0;
      for (let i = 0; i < live.length && taken < perBucket; i++) {
        const j = live[i]!;
        if (this.isQueued(j)) {
          out.push(j);
          taken++;
        } else dead++;
      }
      // Placed jobs pile up at the head: drop them once they dominate what we scan.
      if (dead > taken) this.buckets.set(key, live.filter(this.isQueued));
      if (live.length === 0) this.buckets.delete(key);
    }
    return out;
  }
}
