import { describe, expect, it } from 'vitest';
import { explainWait } from './explain.js';
import { snapshotOf } from './snapshot.js';
import { agent, busyAgent, job, res } from './test-support.js';

const closed = (): boolean => false;

describe('explainWait', () => {
  it('names the selector terms no agent satisfies, the executor label among them', () => {
    const s = snapshotOf([agent('a1', { os: 'linux' }), agent('a2', { os: 'linux', gpu: 'true' })], []);
    const d = explainWait(s, job('j', { selector: 'os=linux,arch=arm64,gpu', executor: 'sandbox' }), closed);
    expect(d.unmatchedTerms).toEqual(['arch=arm64', 'runmesh.io/executor-sandbox']);
    expect(d.matching).toEqual([]);
  });

  it('says why each matching agent cannot take the job: not schedulable, breaker, too small, full', () => {
    const s = snapshotOf(
      [
        agent('cordoned', { pool: 'ci' }, res(4), { schedulable: false }),
        agent('tripped', { pool: 'ci' }),
        agent('small', { pool: 'ci' }, res(1)),
        busyAgent(agent('full', { pool: 'ci' }), res(3)),
        agent('free', { pool: 'ci' }),
        agent('other', { pool: 'web' }),
      ],
      [],
    );
    const d = explainWait(s, job('j', { selector: 'pool=ci', resources: res(2) }), (a) => a === 'tripped');
    expect(d.unmatchedTerms).toEqual([]);
    const why = Object.fromEntries(d.matching.map((m) => [m.agent, m.why]));
    expect(Object.keys(why).sort()).toEqual(['cordoned', 'free', 'full', 'small', 'tripped']);
    expect(why.cordoned).toMatch(/cordoned/);
    expect(why.tripped).toMatch(/circuit breaker/);
    expect(why.small).toMatch(/too small: has 1 slots/);
    expect(why.full).toMatch(/full: 1 slots free/);
    expect(why.free).toBe('');
  });

  it('reports an invalid selector as such', () => {
    const d = explainWait(snapshotOf([agent('a')], []), job('j', { selector: 'a in (' }), closed);
    expect(d.unmatchedTerms[0]).toMatch(/invalid selector/);
  });

  it('says which free agent the job avoids, an earlier attempt having failed there', () => {
    const s = snapshotOf([agent('a1'), busyAgent(agent('a2', {}, res(1)), res(1))], []);
    const d = explainWait(s, job('j', { avoid: ['a1'] }), closed);
    expect(Object.fromEntries(d.matching.map((m) => [m.agent, m.why]))).toEqual({
      a1: 'avoided: an earlier attempt of this job failed there (taken only when no other agent can take the job)',
      a2: 'full: 0 slots free, the job needs 1 slots',
    });
  });
});
