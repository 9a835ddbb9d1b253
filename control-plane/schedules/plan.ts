/**
 * What a schedule's leader does now: a pure function of the schedule's last
 * handled tick, its pattern, its missed-tick policy and the time. Each step
 * is stored on its own (schedules/firing.ts), so a failover between two steps
 * loses none and repeats none.
 *
 * A tick at most `missedAfterMs` old is fired, late if need be, each tick
 * once. Older ticks are missed (no leader ran the schedule then): with
 * `run-once` they make one run, for the latest of them; with `skip`, none.
 */
import type { CronSchedule } from './cron.js';

export type MissedPolicyName = 'run-once' | 'skip';

export interface Step {
  /** The tick this step handles; once stored, ticks up to it are done. */
  at: Date;
  /** False: the step only records ticks skipped by the missed-tick policy. */
  run: boolean;
  note: string;
}

/** Missed ticks are counted up to this many for the note ("1000+ missed ticks"). */
const COUNT_CAP = 1000;

/**
 * The steps due at `now` after `lastTick`, oldest first, at most `max`
 * (the rest are due at the next pass).
 */
export function dueSteps(
  cron: CronSchedule,
  lastTick: Date,
  now: Date,
  missed: MissedPolicyName,
  missedAfterMs: number,
  max: number,
): Step[] {
  const steps: Step[] = [];
  let last = lastTick;
  const first = cron.next(last);
  if (!first || first > now) return steps;
  const cutoff = new Date(now.getTime() - missedAfterMs);
  if (first < cutoff) {
    const latest = cron.latestAtOrBefore(new Date(cutoff.getTime() - 1)) ?? first;
    const count = countTicks(cron, last, latest);
    const what = `${count >= COUNT_CAP ? `${COUNT_CAP}+` : count} missed tick${count === 1 ? '' : 's'}`;
    steps.push(
      missed === 'run-once' ? { at: latest, run: true, note: `one run for ${what}` } : { at: latest, run: false, note: `skipped ${what}` },
    );
    last = latest;
  }
  for (let t = cron.next(last); t && t <= now && steps.length < max; t = cron.next(t)) {
    const lateMs = now.getTime() - t.getTime();
    steps.push({ at: t, run: true, note: lateMs >= 1000 ? `tick, late by ${Math.round(lateMs / 1000)}s` : 'tick' });
  }
  return steps;
}

/** Ticks in (after, until], counted up to COUNT_CAP. */
function countTicks(cron: CronSchedule, after: Date, until: Date): number {
  let n = 0;
  for (let t = cron.next(after); t && t <= until && n < COUNT_CAP; t = cron.next(t)) n++;
  return n;
}
