/**
 * Deficit round robin over tenants within one QoS class. Each visit gives a
 * tenant a quantum in proportion to its weight (the lightest active tenant
 * gets one slot per visit); a placed job costs its slots. Jobs that do not
 * fit cost nothing and are skipped, so a tenant's smaller jobs may backfill.
 *
 * Deficits and the cursor persist across rounds. A round ends when every
 * job has been tried, but only the service up to the round's last placement
 * counts: visits after it placed nothing (the cluster was full), so their
 * quanta and resets are rolled back. That keeps shares exact across rounds
 * of a saturated cluster instead of favouring whoever comes first.
 */
import type { QueuedJob } from './types.js';

/** Tries to place one job; true when placed. */
export type TryPlace = (job: QueuedJob) => boolean;

export class FairShare {
  private readonly deficits = new Map<string, number>();
  private cursor: string | undefined;
  /** Whether the cursor tenant already got its quantum for the visit in progress. */
  private charged = false;

  constructor(private readonly weightOf: (tenant: string) => number) {}

  /** Current deficit of `tenant` (for tests and metrics). */
  deficit(tenant: string): number {
    return this.deficits.get(tenant) ?? 0;
  }

  /** Serves `queues` (tenant → jobs in order) by weighted deficit round robin. */
  run(queues: ReadonlyMap<string, readonly QueuedJob[]>, tryPlace: TryPlace): void {
    // A tenant with nothing queued banks no credit.
    for (const t of [...this.deficits.keys()]) if (!queues.has(t)) this.deficits.delete(t);
    const names = [...queues.keys()].sort();
    if (names.length === 0) return;
    const lists = names.map((t) => queues.get(t) ?? []);
    const weights = names.map((t) => this.weightOf(t));
    const minWeight = Math.min(...weights);
    const quanta = weights.map((w) => w / minWeight);
    const deficit = Float64Array.from(names, (t) => this.deficit(t));
    const heads = new Int32Array(names.length);
    const active = names.map((_, k) => k);
    /** [tenant, previous deficit] for every change since the last placement. */
    const journal: number[] = [];
    const set = (k: number, d: number): void => {
      journal.push(k, deficit[k] ?? 0);
      deficit[k] = d;
    };
    let saved = { cursor: this.cursor, charged: this.charged };
    let pos = this.startAt(names);
    let charged = this.charged && names[pos] === this.cursor;
    while (active.length > 0) {
      if (pos >= active.length) pos = 0;
      const k = active[pos] as number;
      const q = lists[k] as readonly QueuedJob[];
      if (!charged) set(k, (deficit[k] ?? 0) + (quanta[k] ?? 1));
      charged = false;
      let head = heads[k] ?? 0;
      for (; head < q.length; head++) {
        const job = q[head] as QueuedJob;
        const cost = Math.max(1, job.resources.slots);
        if ((deficit[k] ?? 0) < cost) break;
        if (!tryPlace(job)) continue;
        set(k, (deficit[k] ?? 0) - cost);
        journal.length = 0;
        saved = { cursor: names[k], charged: true };
      }
      heads[k] = head;
      if (head >= q.length) {
        set(k, 0);
        active.splice(pos, 1);
      } else pos++;
    }
    for (let j = journal.length - 2; j >= 0; j -= 2) deficit[journal[j] ?? 0] = journal[j + 1] ?? 0;
    names.forEach((t, k) => this.deficits.set(t, deficit[k] ?? 0));
    ({ cursor: this.cursor, charged: this.charged } = saved);
  }

  /** Where the last round's service stopped: the cursor tenant, or the next one after it. */
  private startAt(names: readonly string[]): number {
    if (this.cursor === undefined) return 0;
    const at = names.findIndex((t) => t >= (this.cursor as string));
    return at < 0 ? 0 : at;
  }
}
