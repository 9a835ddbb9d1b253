import { describe, expect, it } from 'vitest';
import type { JobProgress } from '../../proto/gen/runmesh/v1/agent.js';
import { ProgressCoalescer } from './progress.js';

const report = (percent: number, attempt = 1): JobProgress => ({
  jobId: 'j',
  attempt,
  percent,
  text: '',
  annotations: [],
  droppedAnnotations: 0,
});

describe('ProgressCoalescer', () => {
  it('writes a flood as a few writes, never two at once, the latest one last', async () => {
    const written: number[] = [];
    let inFlight = 0;
    let most = 0;
    const c = new ProgressCoalescer(async (p) => {
      most = Math.max(most, ++inFlight);
      await new Promise((r) => setTimeout(r, 30)); // a slow store
      written.push(p.percent ?? -1);
      inFlight--;
    }, 100);
    for (let i = 0; i <= 10_000; i++) c.offer(report(i % 101));
    await new Promise((r) => setTimeout(r, 20));
    for (let i = 0; i < 5000; i++) c.offer(report(i % 50));
    await new Promise((r) => setTimeout(r, 300));
    expect(written.length).toBeGreaterThanOrEqual(2);
    expect(written.length).toBeLessThanOrEqual(3);
    expect(written.at(-1)).toBe(4999 % 50);
    expect(most).toBe(1);
    c.close();
  });

  it("hands the attempt's latest report to its result, and forgets the attempt", () => {
    const written: number[] = [];
    const c = new ProgressCoalescer(async (p) => void written.push(p.percent ?? -1), 1000);
    c.offer(report(10));
    c.offer(report(20));
    expect(c.take('j', 1)?.percent).toBe(20);
    expect(c.take('j', 1)).toBeUndefined();
    expect(c.take('j', 2)).toBeUndefined();
    c.close();
  });
});
