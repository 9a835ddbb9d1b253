/** Host exclusion: a job's avoided agents are skipped while another agent can take it. */
import { describe, expect, it } from 'vitest';
import { Router, snapshotOf } from './index.js';
import { agent, busyAgent, job, res } from './test-support.js';

const decide = (agents: Parameters<typeof snapshotOf>[0], queue: Parameters<Router['decide']>[1]) =>
  new Router().decide(snapshotOf(agents), queue, 0);

describe('a job that avoids agents', () => {
  it('is placed on another agent, every time, while one is free', () => {
    for (let i = 0; i < 50; i++) {
      const d = decide([agent('a1'), agent('a2'), agent('a3')], [job('j', { avoid: ['a1', 'a2'] })]);
      expect(d.placements).toEqual([{ jobId: 'j', agent: 'a3' }]);
    }
  });

  it('waits for a busy other agent rather than run where it failed, and says so', () => {
    const d = decide([agent('a1'), busyAgent(agent('a2', {}, res(1)), res(1))], [job('j', { avoid: ['a1'] })]);
    expect(d.placements).toEqual([]);
    expect(d.waiting.get('j')).toMatch(/^waiting: the 1 matching agent is busy \(avoiding a1, where an earlier attempt failed\)$/);
  });

  it('falls back to an avoided agent when no other could take it: none matches, takes work, or is large enough', () => {
    const clusters = [
      [agent('a1', { os: 'linux' }), agent('a2', { os: 'mac' })],
      [agent('a1', { os: 'linux' }), agent('a2', { os: 'linux' }, res(4), { schedulable: false })],
      [agent('a1', { os: 'linux' }, res(8)), agent('a2', { os: 'linux' }, res(2))],
    ];
    for (const agents of clusters) {
      const d = decide(agents, [job('j', { selector: 'os=linux', resources: res(4), avoid: ['a1'] })]);
      expect(d.placements).toEqual([
        { jobId: 'j', agent: 'a1', note: 'no other agent can take it, so it may run again on a1, where an earlier attempt failed' },
      ]);
    }
  });

  it('says it may run on an avoided agent again while it waits for it', () => {
    const d = decide([busyAgent(agent('a1', {}, res(1)), res(1))], [job('j', { avoid: ['a1'] })]);
    expect(d.waiting.get('j')).toMatch(/busy \(no other agent can take it, so it may run again on a1, where an earlier attempt failed\)$/);
  });

  it('does not change where the jobs that avoid nothing go, in the same round', () => {
    const d = decide([agent('a1', {}, res(1)), agent('a2', {}, res(1))], [job('x', { avoid: ['a1'] }), job('y')]);
    expect(new Map(d.placements.map((p) => [p.jobId, p.agent]))).toEqual(
      new Map([
        ['x', 'a2'],
        ['y', 'a1'],
      ]),
    );
  });
});
