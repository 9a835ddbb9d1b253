/**
 * A schedule as stored: the public Schedule (its next ticks left out: they
 * are worked out when read), its spec resolved once at create.
 */
import { MissedPolicy, OverlapPolicy, Schedule, type ScheduleRun, type ScheduleSpec } from '../../proto/gen/runmesh/v1/schedule.js';
import { ValidationError } from '../jobs/errors.js';
import type { ResolvedSpec } from '../jobs/record.js';
import { validateSpec } from '../jobs/validate.js';
import { CronSchedule } from './cron.js';
import type { MissedPolicyName } from './plan.js';

export const SCHEDULE_LIMITS = {
  /** Schedules per tenant. */
  perTenant: 100,
  /** Runs kept per schedule, newest first. */
  runsKept: 20,
  /** Runs kept with the older ones whose jobs are still active. */
  runsWithActive: 100,
  /** Longest `missed_after_seconds`. */
  missedAfterSeconds: 86_400,
  defaultMissedAfterSeconds: 60,
  params: 64,
  paramChars: 4096,
} as const;

/** Names of schedules and templates: what a tenant name may be, so that `<tenant>/<name>` keys never clash. */
export const RECORD_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export function checkRecordName(name: string, field: string): string {
  if (!name) throw new ValidationError(field, 'missing');
  if (!RECORD_NAME.test(name))
    throw new ValidationError(
      field,
      `bad name "${name.slice(0, 64)}": letters, digits, '.', '_' and '-', starting with a letter or digit, at most 63`,
    );
  return name;
}

export const encodeSchedule = (s: Schedule): string => JSON.stringify(Schedule.toJSON({ ...s, nextTicks: [] }));
export const decodeSchedule = (text: string): Schedule => Schedule.fromJSON(JSON.parse(text));

/** The schedule's pattern, parsed (it was checked at create). */
export const cronOf = (spec: ScheduleSpec): CronSchedule => CronSchedule.parse(spec.cron, spec.timezone);

export const missedPolicyOf = (spec: ScheduleSpec): MissedPolicyName =>
  spec.missed === MissedPolicy.MISSED_POLICY_SKIP ? 'skip' : 'run-once';

export const missedAfterMs = (spec: ScheduleSpec): number => (spec.missedAfterSeconds || SCHEDULE_LIMITS.defaultMissedAfterSeconds) * 1000;

/**
 * Checks a spec and resolves its defaults (overlap skip, missed run-once, 60 s):
 * the one place they are applied. Its tenant is the caller's choice, already
 * checked. Throws ValidationError naming the field.
 */
export function resolveScheduleSpec(spec: ScheduleSpec | undefined, tenant: string): ScheduleSpec {
  if (!spec) throw new ValidationError('spec', 'missing');
  checkRecordName(spec.name, 'spec.name');
  CronSchedule.parse(spec.cron, spec.timezone);
  if (OverlapPolicy[spec.overlap] === undefined || (spec.overlap as number) < 0)
    throw new ValidationError('spec.overlap', `unknown policy ${spec.overlap}`);
  if (MissedPolicy[spec.missed] === undefined || (spec.missed as number) < 0)
    throw new ValidationError('spec.missed', `unknown policy ${spec.missed}`);
  if (spec.missedAfterSeconds > SCHEDULE_LIMITS.missedAfterSeconds)
    throw new ValidationError(
      'spec.missed_after_seconds',
      `${spec.missedAfterSeconds}s exceeds the limit of ${SCHEDULE_LIMITS.missedAfterSeconds}s`,
    );
  if (!spec.job === !spec.template) throw new ValidationError('spec.job', 'give a job or a template, one of them');
  checkParams(spec);
  return {
    ...spec,
    tenant,
    overlap: spec.overlap || OverlapPolicy.OVERLAP_POLICY_SKIP,
    missed: spec.missed || MissedPolicy.MISSED_POLICY_RUN_ONCE,
    missedAfterSeconds: spec.missedAfterSeconds || SCHEDULE_LIMITS.defaultMissedAfterSeconds,
    job: spec.job && scheduledJob(spec.job, tenant),
    params: { ...spec.params },
  };
}

function checkParams(spec: ScheduleSpec): void {
  const entries = Object.entries(spec.params);
  if (entries.length > 0 && !spec.template) throw new ValidationError('spec.params', 'parameters go with a template');
  if (entries.length > SCHEDULE_LIMITS.params) throw new ValidationError('spec.params', `more than ${SCHEDULE_LIMITS.params}`);
  for (const [k, v] of entries)
    if (v.length > SCHEDULE_LIMITS.paramChars)
      throw new ValidationError(`spec.params.${k}`, `longer than ${SCHEDULE_LIMITS.paramChars} characters`);
}

/** The job each tick submits: validated as Submit does, in the schedule's tenant, without an idempotency key (each tick is its own job). */
function scheduledJob(job: NonNullable<ScheduleSpec['job']>, tenant: string): ResolvedSpec {
  if (job.idempotencyKey) throw new ValidationError('spec.job.idempotency_key', 'not for a schedule: each tick makes its own job, once');
  if (job.needs.length > 0) throw new ValidationError('spec.job.needs', 'a schedule runs one job: needs name jobs of a pipeline');
  if (job.tenant && job.tenant !== tenant) throw new ValidationError('spec.job.tenant', `must be the schedule's tenant (${tenant})`);
  return validateSpec({ ...job, tenant }, 'spec.job');
}

/**
 * Adds `run` to the newest-first runs, keeping the latest
 * SCHEDULE_LIMITS.runsKept and, beyond them, older runs whose jobs are still
 * active (`active`), so that the overlap policy still sees a long run after
 * many skipped ticks (at most SCHEDULE_LIMITS.runsWithActive in all).
 */
export function withRun(s: Schedule, run: ScheduleRun, active: (r: ScheduleRun) => boolean): ScheduleRun[] {
  const all = [run, ...s.runs];
  const kept = all.filter((r, i) => i < SCHEDULE_LIMITS.runsKept || active(r));
  return kept.slice(0, SCHEDULE_LIMITS.runsWithActive);
}
