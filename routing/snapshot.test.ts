import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatSelector, matches, parseSelector, Router, snapshotOf, type Requirement } from './index.js';
import { agent, job, res, running, TEST_SEED } from './test-support.js';

const KEYS = ['os', 'arch', 'gpu', 'zone'] as const;
const VALUES = ['a', 'b', 'c', 'd'] as const;

const labelled = fc
  .array(fc.dictionary(fc.constantFrom(...KEYS), fc.constantFrom(...VALUES)), { maxLength: 40 })
  .map((ls) => ls.map((l, k) => agent(`agent-${k}`, l)));

const requirement: fc.Arbitrary<Requirement> = fc
  .record({
    key: fc.constantFrom(...KEYS, 'absent'),
    op: fc.constantFrom('=' as const, '!=' as const, 'in' as const, 'notin' as const, 'exists' as const, '!exists' as const),
    values: fc.array(fc.constantFrom(...VALUES), { minLength: 1, maxLength: 3 }),
  })
  .map((r) =>
    r.op === 'exists' || r.op === '!exists'
      ? { ...r, values: [] }
      : r.op === '=' || r.op === '!='
        ? { ...r, values: r.values.slice(0, 1) }
        : r,
  );

describe('ClusterSnapshot', () => {
  it(`built from the previous snapshot, decides exactly as one built afresh, and reuses indices only for the same agents (seed ${TEST_SEED})`, () => {
    const rounds = fc.array(
      fc.record({
        used: fc.array(fc.nat({ max: 3 }), { minLength: 8, maxLength: 8 }),
        relabel: fc.option(fc.nat({ max: 7 }), { nil: undefined }),
      }),
      { minLength: 1, maxLength: 6 },
    );
    fc.assert(
      fc.property(
        labelled.filter((a) => a.length >= 8).map((a) => a.slice(0, 8)),
        rounds,
        (start, steps) => {
          let agents = start;
          let previous = snapshotOf(agents);
          const router = new Router({ seed: TEST_SEED });
          const fresh = new Router({ seed: TEST_SEED });
          for (const step of steps) {
            if (step.relabel !== undefined)
              agents = agents.map((a, i) => (i === step.relabel ? { ...a, labels: { ...a.labels, zone: 'moved' } } : a));
            // Same identity objects, new free slots and load: what the scheduler builds every round.
            const views = agents.map((a, i) => ({ ...a, free: res(4 - step.used[i]!), load: step.used[i]! / 4 }));
            const next = snapshotOf(views, [], previous);
            expect(next.index === previous.index).toBe(step.relabel === undefined);
            const jobs = Array.from({ length: 6 }, (_, k) =>
              job(`j${k}`, { selector: k % 2 ? 'zone=moved' : '', strategy: k % 3 ? 'spread' : 'binpack' }),
            );
            expect(router.decide(next, jobs, 0)).toEqual(fresh.decide(snapshotOf(views), jobs, 0));
            previous = next;
          }
        },
      ),
      { seed: TEST_SEED, numRuns: 200 },
    );
  });

  it(`label-index candidates equal a full scan with matches() (seed ${TEST_SEED})`, () => {
    fc.assert(
      fc.property(labelled, fc.array(requirement, { maxLength: 4 }), (agents, sel) => {
        const snap = snapshotOf(agents);
        const text = formatSelector(sel);
        const got = [...snap.candidates(text, parseSelector(text)).matching];
        const want = agents.flatMap((a, i) => (matches(sel, a.labels) ? [i] : []));
        expect(got).toEqual(want);
      }),
      { seed: TEST_SEED, numRuns: 500 },
    );
  });

  it(`agentsWithPrefix equals a filter over names (seed ${TEST_SEED})`, () => {
    const names = fc.uniqueArray(fc.stringMatching(/^[a-c]{1,5}$/), { maxLength: 30 });
    fc.assert(
      fc.property(names, fc.stringMatching(/^[a-c]{0,3}$/), (ns, prefix) => {
        const snap = snapshotOf(ns.map((n) => agent(n)));
        expect(snap.agentsWithPrefix(prefix).map((a) => a.name)).toEqual(ns.filter((n) => n.startsWith(prefix)).sort());
      }),
      { seed: TEST_SEED, numRuns: 300 },
    );
  });

  it('is frozen and copies its inputs, so a later edit of the caller’s arrays changes nothing', () => {
    const agents = [agent('a', { os: 'linux' }, res(2))];
    const run = [running('j', 'a', 'batch')];
    const snap = snapshotOf(agents, run);
    agents.push(agent('b'));
    run.length = 0;
    expect(Object.isFrozen(snap)).toBe(true);
    expect(Object.isFrozen(snap.agents)).toBe(true);
    expect(snap.agents).toHaveLength(1);
    expect(snap.running).toHaveLength(1);
    expect(snap.batchOn(0).map((r) => r.view.jobId)).toEqual(['j']);
    expect(() => (snap.agents as unknown as unknown[]).push(1)).toThrow();
  });
});
