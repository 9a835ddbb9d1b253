/** A schedule's runs: the latest kept, and an older run whose job is still active kept too, so overlap still sees it. */
import { describe, expect, it } from 'vitest';
import { Schedule, type ScheduleRun } from '../../proto/gen/runmesh/v1/schedule.js';
import { SCHEDULE_LIMITS, withRun } from './record.js';

const run = (i: number, jobIds: string[] = []): ScheduleRun => ({ scheduledAt: `t${i}`, firedAt: undefined, jobIds, state: 0, note: '' });

describe('the runs a schedule keeps', () => {
  it('keeps the latest ones, and an older one whose job is active, after many skipped ticks', () => {
    let s = Schedule.fromPartial({ runs: [run(0, ['j_long'])] });
    for (let i = 1; i <= 30; i++) s = { ...s, runs: withRun(s, run(i), (r) => r.jobIds.includes('j_long')) };
    expect(s.runs).toHaveLength(SCHEDULE_LIMITS.runsKept + 1);
    expect(s.runs[0]!.scheduledAt).toBe('t30');
    expect(s.runs.at(-1)!.jobIds).toEqual(['j_long']);
    // Once it ended, it goes.
    s = { ...s, runs: withRun(s, run(31), () => false) };
    expect(s.runs).toHaveLength(SCHEDULE_LIMITS.runsKept);
  });
});
