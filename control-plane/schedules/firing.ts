/**
 * One run of a schedule (a tick, or a trigger): the overlap policy against
 * its active runs, the job(s) it submits, and the schedule's record moved on,
 * all stored in ONE transaction fenced on the record's mod revision (and, for
 * a tick, on the leader's term). Two peers that both try the same tick (a
 * deposed leader and its successor) read the same revision: one transaction
 * wins, the other changes nothing. Jobs are stored QUEUED, as a submit on a
 * follower stores them; the leader's tracker sees them through its watch.
 */
import type { Logger } from 'pino';
import { OverlapPolicy, type Schedule, type ScheduleRun } from '../../proto/gen/runmesh/v1/schedule.js';
import type { JobRecord, ResolvedSpec } from '../jobs/record.js';
import { encodeRecord } from '../jobs/record.js';
import { validateSpec } from '../jobs/validate.js';
import { isValidation } from '../jobs/errors.js';
import { isRecordNotFound } from '../store/tenant-records.js';
import type { Compare, Op } from '../store/store.js';
import type { TenantRecords, VersionedRecord } from '../store/tenant-records.js';
import { withRun } from './record.js';

export interface FiringDeps {
  schedules: TenantRecords<Schedule>;
  /** A new QUEUED job record for `spec` (JobRepo.draft) and its store key. */
  draft(spec: ResolvedSpec, now: Date): JobRecord;
  jobKey(id: string): string;
  /** The specs a template makes with these parameters (templates/), each resolved in `tenant`. */
  expand(tenant: string, template: string, params: Record<string, string>): Promise<ResolvedSpec[]>;
  /** True while the job has not ended (the tracker's live jobs). */
  isActive(jobId: string): boolean;
  /** Cancels a job (cancel-previous); a job already ended is no error. */
  cancel(jobId: string, reason: string): Promise<void>;
  logger: Logger;
}

export interface RunRequest {
  /** The schedule as read, with the revision the transaction compares. */
  current: VersionedRecord<Schedule>;
  /** The tick, or the trigger's time. */
  at: Date;
  /** False: only record `note` (missed ticks skipped by policy). */
  run: boolean;
  note: string;
  /** True for a tick: the record's last tick moves to `at`. A trigger leaves it. */
  advance: boolean;
  /** Extra compares (the leader's term for a tick). */
  fence: readonly Compare[];
  /**
   * A tick whose job cannot be made (its template deleted, or filled in wrong)
   * is recorded as not started, with the reason, and the schedule moves on;
   * without this (a trigger) the error goes to the caller.
   */
  recordFailure?: boolean;
}

export interface RunOutcome {
  stored: VersionedRecord<Schedule>;
  run: ScheduleRun;
}

export const SCHEDULE_ENV = { name: 'RUNMESH_SCHEDULE', at: 'RUNMESH_SCHEDULED_AT' } as const;

export class ScheduleFiring {
  constructor(private readonly d: FiringDeps) {}

  /** Makes the run and stores it; undefined when the record changed since it was read (or the fence failed): nothing was stored. */
  async run(r: RunRequest): Promise<RunOutcome | undefined> {
    const s = r.current.value;
    const spec = s.spec!;
    const now = new Date();
    const run: ScheduleRun = { scheduledAt: r.at.toISOString(), firedAt: now.toISOString(), jobIds: [], state: 0, note: r.note };
    const records = r.run ? await this.jobsOrFailure(r, s, now, run) : [];
    run.jobIds = records.map((j) => j.job.id);
    const active = (x: ScheduleRun): boolean => x.jobIds.some((id) => this.d.isActive(id));
    const next: Schedule = { ...s, lastTick: r.advance ? r.at.toISOString() : s.lastTick, runs: withRun(s, run, active) };
    const ops: Op[] = records.map((j) => ({ type: 'put', key: this.d.jobKey(j.job.id), value: encodeRecord(j) }));
    const stored = await this.d.schedules.swap(spec.tenant, spec.name, r.current.modRevision, next, ops, r.fence);
    if (!stored) return undefined;
    const log = this.d.logger.child({ schedule: spec.name, tenant: spec.tenant });
    log.info(
      { scheduled_at: run.scheduledAt, job_ids: run.jobIds, note: run.note },
      run.jobIds.length > 0 ? 'schedule fired' : 'schedule tick skipped',
    );
    return { stored, run };
  }

  private async jobsOrFailure(r: RunRequest, s: Schedule, now: Date, run: ScheduleRun): Promise<JobRecord[]> {
    try {
      return await this.jobsFor(s, r.at, now, run);
    } catch (err) {
      if (!r.recordFailure || !(isValidation(err) || isRecordNotFound(err))) throw err;
      run.note = `not started: ${(err as Error).message}`;
      return [];
    }
  }

  /** The run's jobs, after the overlap policy; none (and a note saying why) when it skips. */
  private async jobsFor(s: Schedule, at: Date, now: Date, run: ScheduleRun): Promise<JobRecord[]> {
    const spec = s.spec!;
    const active = s.runs.flatMap((r) => r.jobIds).filter((id) => this.d.isActive(id));
    if (active.length > 0 && spec.overlap === OverlapPolicy.OVERLAP_POLICY_SKIP) {
      run.note = `skipped: run ${active[0]} still active (overlap: skip)`;
      return [];
    }
    if (active.length > 0 && spec.overlap === OverlapPolicy.OVERLAP_POLICY_CANCEL_PREVIOUS) {
      await Promise.all(
        active.map((id) => this.d.cancel(id, `superseded by schedule ${spec.name} at ${at.toISOString()} (overlap: cancel-previous)`)),
      );
      run.note += `; cancelled ${active.join(', ')}`;
    }
    const specs = spec.job ? [validateSpec(spec.job, 'spec.job')] : await this.d.expand(spec.tenant, spec.template, spec.params);
    return specs.map((js) => {
      const env = { ...js.env, [SCHEDULE_ENV.name]: spec.name, [SCHEDULE_ENV.at]: at.toISOString() };
      const record = this.d.draft({ ...js, tenant: spec.tenant, env }, now);
      record.job.schedule = spec.name;
      record.job.scheduledAt = at.toISOString();
      return record;
    });
  }
}
