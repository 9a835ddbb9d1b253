import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { agentSeed, fnv1a, rendezvous } from './hash.js';
import { Router, snapshotOf, type AgentView } from './index.js';
import { agent, busyAgent, job, res, TEST_SEED } from './test-support.js';

/** The rendezvous winner computed from the definition, independently of the router's memo. */
const preferredOf = (key: string, agents: readonly AgentView[]): string =>
  agents.reduce((best, a) => (rendezvous(fnv1a(key), agentSeed(a.name)) > rendezvous(fnv1a(key), agentSeed(best.name)) ? a : best)).name;

const names = fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9-]{2,12}[a-z0-9]$/), { minLength: 20, maxLength: 20 });

function placeAll(agents: readonly AgentView[], keys: readonly string[]): Map<string, string> {
  const d = new Router().decide(
    snapshotOf(agents),
    keys.map((k) => job(k, { affinityKey: k })),
  );
  return new Map(d.placements.map((p) => [p.jobId, p.agent]));
}

describe('affinity (rendezvous hashing)', () => {
  it(`with capacity available, >= 95% of keyed jobs land on their preferred agent (seed ${TEST_SEED})`, () => {
    fc.assert(
      fc.property(names, fc.array(fc.uuid(), { minLength: 500, maxLength: 500 }), (ns, keys) => {
        const agents = ns.map((n) => agent(n, {}, res(100)));
        const placed = placeAll(agents, keys);
        const onPreferred = keys.filter((k) => placed.get(k) === preferredOf(k, agents)).length;
        expect(onPreferred / keys.length).toBeGreaterThanOrEqual(0.95);
      }),
      { seed: TEST_SEED, numRuns: 20 },
    );
  });

  it(`removing one of 20 agents moves only the keys it held, fewer than 2/N (seed ${TEST_SEED})`, () => {
    fc.assert(
      fc.property(names, fc.nat(19), (ns, gone) => {
        const agents = ns.map((n) => agent(n, {}, res(1000)));
        const keys = Array.from({ length: 2000 }, (_, k) => `repo-${k}`);
        const before = placeAll(agents, keys);
        const removed = agents[gone]?.name;
        const after = placeAll(
          agents.filter((a) => a.name !== removed),
          keys,
        );
        const moved = keys.filter((k) => before.get(k) !== after.get(k));
        for (const k of moved) expect(before.get(k)).toBe(removed);
        expect(moved.length / keys.length).toBeLessThan(2 / agents.length);
      }),
      { seed: TEST_SEED, numRuns: 20 },
    );
  });

  it('falls back to the strategy when the preferred agent is full or cordoned', () => {
    const agents = ['a1', 'a2', 'a3'].map((n) => agent(n, {}, res(1)));
    const key = 'repo-x';
    const pref = preferredOf(key, agents);
    const full = agents.map((a) => (a.name === pref ? busyAgent(a, res(1)) : a));
    const d = new Router().decide(snapshotOf(full), [job('j', { affinityKey: key })]);
    expect(d.placements).toHaveLength(1);
    expect(d.placements[0]?.agent).not.toBe(pref);
    const cordoned = agents.map((a) => (a.name === pref ? { ...a, schedulable: false } : a));
    const c = new Router().decide(snapshotOf(cordoned), [job('k', { affinityKey: key })]);
    expect(c.placements[0]?.agent).not.toBe(pref);
  });
});
