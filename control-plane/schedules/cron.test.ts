/**
 * Cron through croner: DST in a time zone (Europe/Berlin, 2026), refusals
 * naming the field, and the due steps a leader takes (the missed-tick policy).
 */
import { describe, expect, it } from 'vitest';
import { isValidation } from '../jobs/errors.js';
import { CronSchedule } from './cron.js';
import { dueSteps } from './plan.js';

const iso = (ds: Date[]): string[] => ds.map((d) => d.toISOString());

describe('a cron pattern in a time zone', () => {
  it('fires 02:30 on the spring-forward night (2026-03-29, 02:00-03:00 does not exist in Berlin) at 03:00 CEST, once', () => {
    const daily = CronSchedule.parse('30 2 * * *', 'Europe/Berlin');
    // 27th, 28th: 02:30 CET (01:30Z); 29th: the wall time does not exist, fired when the gap ends (03:00 CEST = 01:00Z); 30th: 02:30 CEST.
    expect(iso(daily.nextTicks(new Date('2026-03-26T12:00:00Z'), 4))).toEqual([
      '2026-03-27T01:30:00.000Z',
      '2026-03-28T01:30:00.000Z',
      '2026-03-29T01:00:00.000Z',
      '2026-03-30T00:30:00.000Z',
    ]);
  });

  it('fires 02:30 on the fall-back night (2026-10-25, 02:00-03:00 happens twice in Berlin) once, at its first occurrence (CEST)', () => {
    const daily = CronSchedule.parse('30 2 * * *', 'Europe/Berlin');
    expect(iso(daily.nextTicks(new Date('2026-10-24T12:00:00Z'), 2))).toEqual(['2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z']);
  });

  it('keeps an every-30-minutes pattern on the real clock through the repeated hour', () => {
    const half = CronSchedule.parse('*/30 * * * *', 'Europe/Berlin');
    const ticks = half.nextTicks(new Date('2026-10-25T00:00:00Z'), 5);
    expect(ticks.map((t, i) => (i === 0 ? 0 : t.getTime() - ticks[i - 1]!.getTime()))).toEqual([
      0, 1_800_000, 1_800_000, 1_800_000, 1_800_000,
    ]);
  });

  it('reads a pattern in UTC without a zone, and takes seconds as a sixth field', () => {
    expect(iso(CronSchedule.parse('* * * * * *', '').nextTicks(new Date('2026-01-01T00:00:00.400Z'), 2))).toEqual([
      '2026-01-01T00:00:01.000Z',
      '2026-01-01T00:00:02.000Z',
    ]);
    expect(CronSchedule.parse('0 * * * *', '').latestAtOrBefore(new Date('2026-01-01T05:00:00.000Z'))?.toISOString()).toBe(
      '2026-01-01T05:00:00.000Z',
    );
  });

  it('refuses a bad pattern naming cron, an unknown zone naming timezone, and a pattern that never fires', () => {
    const refusal = (pattern: string, zone = ''): string => {
      try {
        CronSchedule.parse(pattern, zone);
        return 'accepted';
      } catch (err) {
        expect(isValidation(err)).toBe(true);
        return (err as Error).message;
      }
    };
    expect(refusal('61 * * * *')).toMatch(/^spec\.cron: "61 \* \* \* \*": .*minute/);
    expect(refusal('')).toMatch(/^spec\.cron: missing/);
    expect(refusal('*/5 * * * *', 'Mars/Olympus')).toMatch(/^spec\.timezone: unknown IANA time zone/);
    expect(refusal('0 0 30 2 *')).toMatch(/^spec\.cron: .*(never fires|day)/);
  });
});

describe('the steps a leader takes', () => {
  const everyMinute = CronSchedule.parse('* * * * *', '');
  const at = (s: string): Date => new Date(`2026-05-01T${s}Z`);

  it('fires each due tick once, in order, noting how late; nothing before the first tick', () => {
    expect(dueSteps(everyMinute, at('10:00:00'), at('10:00:59'), 'run-once', 60_000, 50)).toEqual([]);
    const steps = dueSteps(everyMinute, at('10:00:00'), at('10:02:05'), 'run-once', 600_000, 50);
    expect(steps.map((s) => [s.at.toISOString(), s.run, s.note])).toEqual([
      ['2026-05-01T10:01:00.000Z', true, 'tick, late by 65s'],
      ['2026-05-01T10:02:00.000Z', true, 'tick, late by 5s'],
    ]);
  });

  it('makes one run for the ticks missed past missed_after (run-once), then fires the recent ones', () => {
    const steps = dueSteps(everyMinute, at('10:00:00'), at('11:00:30'), 'run-once', 90_000, 50);
    expect(steps.map((s) => [s.at.toISOString(), s.run, s.note])).toEqual([
      ['2026-05-01T10:58:00.000Z', true, 'one run for 58 missed ticks'],
      ['2026-05-01T10:59:00.000Z', true, 'tick, late by 90s'],
      ['2026-05-01T11:00:00.000Z', true, 'tick, late by 30s'],
    ]);
  });

  it('skips the missed ticks with missed: skip, recording them without a run', () => {
    const steps = dueSteps(everyMinute, at('10:00:00'), at('11:00:30'), 'skip', 60_000, 50);
    expect(steps.map((s) => [s.at.toISOString(), s.run, s.note])).toEqual([
      ['2026-05-01T10:59:00.000Z', false, 'skipped 59 missed ticks'],
      ['2026-05-01T11:00:00.000Z', true, 'tick, late by 30s'],
    ]);
  });

  it('stops at the per-pass cap (the rest are due at the next pass)', () => {
    expect(dueSteps(everyMinute, at('10:00:00'), at('10:09:00'), 'run-once', 3_600_000, 3)).toHaveLength(3);
  });
});
