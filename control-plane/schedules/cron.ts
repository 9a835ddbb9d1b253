/**
 * Cron patterns, through croner (not a parser of our own): 5 fields, or 6
 * with seconds first, read in an IANA time zone (UTC when none is named).
 * Across a DST change croner does what Vixie cron does for wall times: one
 * that does not exist (02:30 on a spring-forward night) fires when the gap
 * ends (03:00), one that happens twice (02:30 on a fall-back night) fires
 * once, at its first occurrence; a pattern that fires every N minutes or
 * seconds goes on by the real clock through both. cron.test.ts pins this.
 */
import { Cron } from 'croner';
import { ValidationError } from '../jobs/errors.js';

/** The ticks can be listed this far ahead at most: a pattern with none in that time (`0 0 30 2 *`) is refused. */
const HORIZON_MS = 5 * 366 * 86_400_000;

export class CronSchedule {
  private constructor(
    private readonly cron: Cron,
    readonly pattern: string,
    readonly timezone: string,
  ) {}

  /** Parses `pattern` in `timezone` (empty: UTC); throws ValidationError naming `cron` or `timezone`. */
  static parse(pattern: string, timezone: string, field = 'spec'): CronSchedule {
    if (!pattern.trim()) throw new ValidationError(`${field}.cron`, 'missing: give a cron pattern such as "*/5 * * * *"');
    if (pattern.length > 256) throw new ValidationError(`${field}.cron`, 'longer than 256 characters');
    if (timezone && !knownZone(timezone))
      throw new ValidationError(`${field}.timezone`, `unknown IANA time zone "${timezone.slice(0, 64)}"`);
    let cron: Cron;
    try {
      cron = new Cron(pattern, { paused: true, timezone: timezone || 'UTC' });
    } catch (err) {
      throw new ValidationError(`${field}.cron`, `"${pattern.slice(0, 64)}": ${(err as Error).message.replace(/^CronPattern: /, '')}`);
    }
    const s = new CronSchedule(cron, pattern, timezone);
    const first = s.next(new Date());
    if (!first || first.getTime() - Date.now() > HORIZON_MS)
      throw new ValidationError(`${field}.cron`, `"${pattern.slice(0, 64)}" never fires in the next five years`);
    return s;
  }

  /** The first tick strictly after `after`, if there is one. */
  next(after: Date): Date | undefined {
    return this.cron.nextRun(after) ?? undefined;
  }

  /** The next `n` ticks strictly after `after`. */
  nextTicks(after: Date, n: number): Date[] {
    return this.cron.nextRuns(n, after);
  }

  /** The latest tick at or before `at`, if any (croner's previousRuns looks strictly before). */
  latestAtOrBefore(at: Date): Date | undefined {
    return this.cron.previousRuns(1, new Date(at.getTime() + 1))[0];
  }
}

function knownZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}
