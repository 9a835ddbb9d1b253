/** Router.setTenantWeights, what a SIGHUP with a changed --tenant-weight calls: later rounds share by the new weights; a bad set changes nothing. */
import { describe, expect, it } from 'vitest';
import { Router, snapshotOf } from './index.js';
import { agent, job, res } from './test-support.js';

const cluster = snapshotOf([agent('a0', {}, res(2)), agent('a1', {}, res(2))]);
let next = 0;

/** Tenant a's share of `rounds` saturated rounds (both tenants queue more than the four slots, every round from an empty cluster). */
function shareOfA(router: Router, rounds: number): number {
  let a = 0;
  let all = 0;
  for (let r = 0; r < rounds; r++) {
    const queue = ['a', 'b'].flatMap((tenant) => Array.from({ length: 6 }, () => job(`rw${next++}`, { tenant })));
    const tenantOf = new Map(queue.map((j) => [j.id, j.tenant]));
    for (const p of router.decide(cluster, queue).placements) {
      all++;
      if (tenantOf.get(p.jobId) === 'a') a++;
    }
  }
  return a / all;
}

describe('tenant weights changed while running', () => {
  it('shares later rounds by the new weights, and refuses a bad set without changing them', () => {
    const router = new Router({ tenantWeights: { a: 1, b: 1 } });
    expect(shareOfA(router, 100)).toBeCloseTo(0.5, 1);
    router.setTenantWeights({ a: 3, b: 1 });
    expect(shareOfA(router, 200)).toBeCloseTo(0.75, 1);
    expect(() => router.setTenantWeights({ a: 0 })).toThrow(/tenantWeights\.a: must be a positive number/);
    expect(shareOfA(router, 200)).toBeCloseTo(0.75, 1);
  });
});
