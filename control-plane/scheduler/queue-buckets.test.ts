import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { QueuedJob } from '../../routing/index.js';
import { job } from '../../routing/test-support.js';
import { QueueBuckets } from './queue-buckets.js';

const keyOf = (j: QueuedJob): string => `${j.qos}/${j.tenant}`;
const routingOrder = (x: QueuedJob, y: QueuedJob): number => y.priority - x.priority || x.order - y.order;

/** What `head(k)` must return, per group: the k best queued jobs by priority, then age. */
function expected(queued: Map<string, QueuedJob>, k: number): Map<string, string[]> {
  const groups = new Map<string, QueuedJob[]>();
  for (const j of queued.values()) groups.set(keyOf(j), [...(groups.get(keyOf(j)) ?? []), j]);
  return new Map(
    [...groups].map(([key, js]) => [
      key,
      js
        .sort(routingOrder)
        .slice(0, k)
        .map((j) => j.id),
    ]),
  );
}

function grouped(out: QueuedJob[]): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  for (const j of out) groups.set(keyOf(j), [...(groups.get(keyOf(j)) ?? []), j.id]);
  return groups;
}

type Op = { add: { tenant: string; priority: number } } | { take: number } | { drop: number } | { head: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ add: fc.record({ tenant: fc.constantFrom('a', 'b'), priority: fc.oneof(fc.constant(0), fc.integer({ min: -2, max: 2 })) }) }),
  fc.record({ take: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ drop: fc.nat() }),
  fc.record({ head: fc.integer({ min: 1, max: 8 }) }),
);

describe('QueueBuckets', () => {
  it('always yields the best queued jobs of each group, whatever was placed or cancelled before', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        const queued = new Map<string, QueuedJob>();
        const buckets = new QueueBuckets((j) => queued.get(j.id) === j);
        let n = 0;
        for (const o of ops) {
          if ('add' in o) {
            const j = job(`j${n++}`, o.add);
            queued.set(j.id, j);
            buckets.add(j);
          } else if ('take' in o) {
            // The router places from the head: the jobs the last head() returned go first.
            for (const j of buckets.head(o.take).slice(0, o.take)) queued.delete(j.id);
          } else if ('drop' in o) {
            // A cancel anywhere in the queue.
            const ids = [...queued.keys()];
            if (ids.length > 0) queued.delete(ids[o.drop % ids.length]!);
          } else {
            expect(grouped(buckets.head(o.head))).toEqual(expected(queued, o.head));
          }
        }
        expect(grouped(buckets.head(1000))).toEqual(expected(queued, 1000));
      }),
      { numRuns: 300 },
    );
  });

  it('steps past a long placed head without rescanning it', () => {
    const queued = new Map<string, QueuedJob>();
    let checks = 0;
    const buckets = new QueueBuckets((j) => (checks++, queued.get(j.id) === j));
    const all = Array.from({ length: 20_000 }, (_, i) => job(`q${i}`));
    for (const j of all) {
      queued.set(j.id, j);
      buckets.add(j);
    }
    // 200 rounds placing 100 jobs each: the whole queue drains from the head.
    for (let round = 0; round < 200; round++) {
      const head = buckets.head(100);
      expect(head[0]?.id).toBe(`q${round * 100}`);
      for (const j of head) queued.delete(j.id);
    }
    expect(buckets.head(100)).toEqual([]);
    // Each job is looked at a small constant number of times, not once per round it sat behind.
    expect(checks).toBeLessThan(all.length * 4);
  });
});
