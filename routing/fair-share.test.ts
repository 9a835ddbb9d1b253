import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Router, snapshotOf, type QueuedJob } from './index.js';
import { agent, job, res, TEST_SEED } from './test-support.js';

/**
 * Saturated rounds: every tenant always has more work queued than the
 * cluster holds; after each round everything placed completes, and the
 * next round starts from an empty cluster with the backlog topped up.
 */
function simulate(
  weights: Record<string, number>,
  agents: number,
  slotsPerAgent: number,
  target: number,
  seed: number,
): Map<string, number> {
  const router = new Router({ tenantWeights: weights, seed });
  const cluster = snapshotOf(Array.from({ length: agents }, (_, k) => agent(`a${k}`, {}, res(slotsPerAgent))));
  const capacity = agents * slotsPerAgent;
  const backlog = new Map<string, QueuedJob[]>(Object.keys(weights).map((t) => [t, []]));
  const placed = new Map<string, number>(Object.keys(weights).map((t) => [t, 0]));
  let total = 0;
  let next = 0;
  for (let round = 0; total < target && round < 100_000; round++) {
    for (const [tenant, list] of backlog) {
      while (list.length < capacity + 2) list.push(job(`j${next++}`, { tenant, strategy: next % 2 ? 'spread' : 'binpack' }));
    }
    const d = router.decide(cluster, [...backlog.values()].flat());
    expect(d.placements.length).toBe(capacity);
    const done = new Set(d.placements.map((p) => p.jobId));
    for (const [tenant, list] of backlog) {
      const left = list.filter((j) => !done.has(j.id));
      placed.set(tenant, (placed.get(tenant) ?? 0) + list.length - left.length);
      backlog.set(tenant, left);
    }
    total += d.placements.length;
  }
  return placed;
}

function expectShares(placed: Map<string, number>, weights: Record<string, number>): void {
  const total = [...placed.values()].reduce((a, b) => a + b, 0);
  const weightSum = Object.values(weights).reduce((a, b) => a + b, 0);
  for (const [tenant, w] of Object.entries(weights)) {
    const share = (placed.get(tenant) ?? 0) / total;
    const want = w / weightSum;
    expect(Math.abs(share - want) / want, `${tenant}: share ${share.toFixed(4)}, weight share ${want.toFixed(4)}`).toBeLessThanOrEqual(
      0.05,
    );
  }
}

describe('fair share (deficit round robin)', () => {
  it('splits 10k saturated placements 3:1', () => {
    const weights = { a: 3, b: 1 };
    const placed = simulate(weights, 5, 1, 10_000, 1);
    expectShares(placed, weights);
  });

  it(`keeps every tenant within ±5% of its weight over 10k placements (seed ${TEST_SEED})`, () => {
    const tenants = fc.uniqueArray(fc.constantFrom('t1', 't2', 't3', 't4', 't5'), { minLength: 2, maxLength: 5 });
    fc.assert(
      fc.property(
        tenants,
        fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 5, maxLength: 5 }),
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 1, max: 4 }),
        fc.nat(),
        (ts, ws, agents, slots, seed) => {
          const weights = Object.fromEntries(ts.map((t, k) => [t, ws[k] ?? 1]));
          expectShares(simulate(weights, agents, slots, 10_000, seed), weights);
        },
      ),
      { seed: TEST_SEED, numRuns: 25 },
    );
  });

  it('orders a tenant’s own jobs by priority, then FIFO', () => {
    const one = snapshotOf([agent('a', {}, res(2))]);
    const d = new Router().decide(one, [job('old'), job('newer'), job('urgent', { priority: 9 })]);
    expect(d.placements.map((p) => p.jobId)).toEqual(['urgent', 'old']);
  });

  it('lets a lone tenant use the whole cluster and banks no credit while idle', () => {
    const router = new Router();
    const cluster = snapshotOf([agent('x', {}, res(4))]);
    const queue = (tenant: string, n: number): QueuedJob[] => Array.from({ length: n }, (_, k) => job(`${tenant}${k}`, { tenant }));
    const solo = router.decide(cluster, queue('a', 6));
    expect(solo.placements).toHaveLength(4);
    // b was idle in the first round: it starts even with a, neither ahead nor behind.
    const both = router.decide(cluster, [...queue('b', 10), ...queue('a', 10)]);
    expect(both.placements.filter((p) => p.jobId.startsWith('b'))).toHaveLength(2);
  });
});
