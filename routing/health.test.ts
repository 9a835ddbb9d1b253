import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HealthTracker, isRoutingOptionError, Router, snapshotOf } from './index.js';
import { agent, job, res, TEST_SEED } from './test-support.js';

const COOL = 30_000;

describe('HealthTracker circuit breaker', () => {
  it('opens after 3 consecutive infra failures; a success in between resets the count', () => {
    const h = new HealthTracker();
    h.recordResult('a', true, 1);
    h.recordResult('a', true, 2);
    h.recordResult('a', false, 3);
    h.recordResult('a', true, 4);
    h.recordResult('a', true, 5);
    expect(h.state('a', 5)).toBe('closed');
    h.recordResult('a', true, 6);
    expect(h.state('a', 6)).toBe('open');
    expect(h.admission('a', 6 + COOL - 1)).toBe('skip');
  });

  it('goes half-open after the cool-down, admits exactly one probe, closes on its success', () => {
    const h = new HealthTracker();
    for (let t = 0; t < 3; t++) h.recordResult('a', true, t);
    expect(h.state('a', 2 + COOL)).toBe('half-open');
    expect(h.admission('a', 2 + COOL)).toBe('probe');
    h.beginProbe('a', 2 + COOL);
    expect(h.admission('a', 3 + COOL)).toBe('skip');
    h.recordResult('a', false, 4 + COOL);
    expect(h.state('a', 4 + COOL)).toBe('closed');
    expect(h.admission('a', 4 + COOL)).toBe('admit');
  });

  it('re-opens on a probe failure, and replaces a probe that never reported', () => {
    const h = new HealthTracker({ failureThreshold: 2, coolDownMs: 1000 });
    h.recordResult('a', true, 0);
    h.recordResult('a', true, 0);
    h.beginProbe('a', 1000);
    h.recordResult('a', true, 1500);
    expect(h.state('a', 1500)).toBe('open');
    expect(h.state('a', 2500)).toBe('half-open');
    h.beginProbe('a', 2500);
    expect(h.admission('a', 3000)).toBe('skip');
    expect(h.admission('a', 3500)).toBe('probe');
  });

  it('rejects nonsense options', () => {
    expect(() => new HealthTracker({ failureThreshold: 0 })).toThrow(/failureThreshold/);
    let caught: unknown;
    try {
      new HealthTracker({ alpha: 2 });
    } catch (err) {
      caught = err;
    }
    expect(isRoutingOptionError(caught)).toBe(true);
  });

  it(`the breaker agrees with a model over random result sequences (seed ${TEST_SEED})`, () => {
    const step = fc.record({ dt: fc.integer({ min: 0, max: 20_000 }), kind: fc.constantFrom('ok', 'fail', 'probe') });
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        const h = new HealthTracker();
        let state: 'closed' | 'open' | 'half-open' = 'closed';
        let run = 0;
        let openedAt = 0;
        let now = 0;
        for (const s of steps) {
          now += s.dt;
          if (state === 'open' && now - openedAt >= COOL) state = 'half-open';
          if (s.kind === 'probe') {
            h.beginProbe('a', now);
            continue;
          }
          const fail = s.kind === 'fail';
          h.recordResult('a', fail, now);
          run = fail ? run + 1 : 0;
          // The count only matters while closed, and closing starts it afresh.
          if (state === 'half-open') [state, openedAt, run] = fail ? ['open', now, run] : ['closed', openedAt, 0];
          else if (state === 'closed' && run >= 3) [state, openedAt] = ['open', now];
          else if (state === 'open' && fail) openedAt = now;
          expect(h.state('a', now)).toBe(state);
        }
      }),
      { seed: TEST_SEED, numRuns: 500 },
    );
  });
});

describe('Router with health', () => {
  const cluster = snapshotOf([agent('sick', {}, res(4)), agent('well', {}, res(4))]);

  it('skips an agent whose breaker is open, probes it once when half-open, uses it again once closed', () => {
    const health = new HealthTracker();
    const router = new Router({ health });
    for (let t = 0; t < 3; t++) health.recordResult('sick', true, t);
    const jobs = (n: number, tag: string) => Array.from({ length: n }, (_, k) => job(`${tag}${k}`));
    const open = router.decide(cluster, jobs(6, 'o'), 10);
    expect(open.placements.every((p) => p.agent === 'well')).toBe(true);
    expect(open.waiting.get('o5')).toBe('waiting: all 2 matching agents are busy (1 skipped by a circuit breaker)');

    const half = router.decide(cluster, jobs(6, 'h'), 3 + COOL);
    expect(half.placements.filter((p) => p.agent === 'sick')).toHaveLength(1);
    // The probe is in flight: the next round does not place there.
    const during = router.decide(cluster, jobs(6, 'd'), 4 + COOL);
    expect(during.placements.filter((p) => p.agent === 'sick')).toHaveLength(0);

    health.recordResult('sick', false, 5 + COOL);
    const closed = router.decide(cluster, jobs(8, 'c'), 6 + COOL);
    expect(closed.placements.filter((p) => p.agent === 'sick')).toHaveLength(4);
  });

  it('prefers the healthier agent when load is equal (slow dispatches and failures cost score)', () => {
    const health = new HealthTracker();
    health.recordDispatch('sick', 900, 0);
    health.recordResult('sick', true, 0);
    const counts = { sick: 0, well: 0 };
    const router = new Router({ health });
    for (let k = 0; k < 50; k++) {
      const p = router.decide(cluster, [job(`j${k}`)], 1).placements[0];
      counts[(p?.agent ?? 'well') as 'sick' | 'well']++;
    }
    expect(counts.well).toBe(50);
  });
});
