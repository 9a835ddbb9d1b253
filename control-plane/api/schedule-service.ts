/**
 * ScheduleService: create, read, pause, resume, delete and trigger a
 * tenant's schedules. Who may do what is the authorization table's (reading
 * is jobs.read, every change jobs.submit: a schedule submits jobs); the tenant
 * is checked here, as for jobs: a schedule of another tenant is NOT_FOUND.
 * The leader fires the ticks (schedules/ticker.ts); Trigger runs one here,
 * through the same fenced transaction.
 */
import type { Server } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { JobState } from '../../proto/gen/runmesh/v1/job.js';
import {
  ScheduleServiceService,
  type CreateScheduleRequest,
  type CreateScheduleResponse,
  type DeleteScheduleResponse,
  type GetScheduleResponse,
  type ListSchedulesRequest,
  type ListSchedulesResponse,
  type Schedule,
  type TriggerScheduleResponse,
} from '../../proto/gen/runmesh/v1/schedule.js';
import { canSee, type Gate, type Principal } from '../auth/index.js';
import type { ScheduleFiring } from '../schedules/firing.js';
import { checkRecordName, cronOf, resolveScheduleSpec } from '../schedules/record.js';
import type { TenantRecords } from '../store/tenant-records.js';
import { auditedUnary, guardedUnary } from './guard.js';
import { callerTenant, recordStatuses, type NamedRequest } from './tenant-records.js';
import { ApiError } from './status.js';
import { status as Status } from '@grpc/grpc-js';

export interface ScheduleServiceDeps {
  gate: Gate;
  schedules: TenantRecords<Schedule>;
  firing: ScheduleFiring;
  /** Checks that a template exists in `tenant` and takes `params` (INVALID_ARGUMENT or NOT_FOUND otherwise). */
  checkTemplate(tenant: string, name: string, params: Record<string, string>): Promise<void>;
  /** A job's state, if it is still stored. */
  jobState(id: string): Promise<JobState | undefined>;
  logger: Logger;
}

const TRIGGER_TRIES = 8;
const NEXT_TICKS = 3;

export class ScheduleServiceImpl {
  constructor(private readonly d: ScheduleServiceDeps) {}

  addToServer(server: Server): void {
    const { gate, logger: log } = this.d;
    const target = (req: NamedRequest): string => `schedule ${req.tenant || '(default)'}/${req.name}`;
    const mutation = <Req extends NamedRequest, Res>(method: string, fn: (req: Req, who: Principal) => Promise<Res>) =>
      auditedUnary(
        gate,
        `ScheduleService.${method}`,
        log,
        (req: Req, who) => recordStatuses(fn(req, who)),
        (req) => target(req),
      );
    server.addService(ScheduleServiceService, {
      createSchedule: auditedUnary(
        gate,
        'ScheduleService.CreateSchedule',
        log,
        (req: CreateScheduleRequest, who) => recordStatuses(this.create(req, who)),
        (req) => target({ name: req.spec?.name ?? '', tenant: req.spec?.tenant ?? '' }),
      ),
      listSchedules: guardedUnary(gate, 'ScheduleService.ListSchedules', log, (req: ListSchedulesRequest, who) =>
        recordStatuses(this.list(req, who)),
      ),
      getSchedule: guardedUnary(gate, 'ScheduleService.GetSchedule', log, (req: NamedRequest, who) => recordStatuses(this.get(req, who))),
      pauseSchedule: mutation('PauseSchedule', (req: NamedRequest, who) => this.setPaused(req, who, true)),
      resumeSchedule: mutation('ResumeSchedule', (req: NamedRequest, who) => this.setPaused(req, who, false)),
      deleteSchedule: mutation('DeleteSchedule', (req: NamedRequest, who) => this.delete(req, who)),
      triggerSchedule: mutation('TriggerSchedule', (req: NamedRequest, who) => this.trigger(req, who)),
    });
  }

  private async create(req: CreateScheduleRequest, who: Principal): Promise<CreateScheduleResponse> {
    const tenant = callerTenant(who, req.spec?.tenant ?? '', 'spec.tenant');
    const spec = resolveScheduleSpec(req.spec, tenant);
    if (spec.template) await this.d.checkTemplate(tenant, spec.template, spec.params);
    const now = new Date().toISOString();
    const schedule: Schedule = {
      spec,
      paused: false,
      createdAt: now,
      createdBy: who.id,
      updatedAt: now,
      // Ticks after its creation: none before.
      lastTick: now,
      nextTicks: [],
      runs: [],
    };
    await this.d.schedules.create(tenant, spec.name, schedule);
    this.d.logger.info({ audit: true, schedule: spec.name, tenant, cron: spec.cron, by: who.id }, 'schedule created');
    return { schedule: await this.view(schedule, false) };
  }

  private async list(req: ListSchedulesRequest, who: Principal): Promise<ListSchedulesResponse> {
    // Another tenant's schedules are not there for this caller: asking for that tenant lists nothing.
    const records =
      req.tenant && !canSee(who, req.tenant) ? [] : await this.d.schedules.list((t) => canSee(who, t), req.tenant || undefined);
    return { schedules: await Promise.all(records.map((v) => this.view(v.value, false))) };
  }

  private async get(req: NamedRequest, who: Principal): Promise<GetScheduleResponse> {
    const { tenant, name } = this.named(req, who);
    return { schedule: await this.view((await this.d.schedules.mustGet(tenant, name)).value, true) };
  }

  private async setPaused(req: NamedRequest, who: Principal, paused: boolean): Promise<GetScheduleResponse> {
    const { tenant, name } = this.named(req, who);
    const stored = await this.d.schedules.update(tenant, name, (s) => {
      if (s.paused === paused) return undefined;
      const now = new Date().toISOString();
      // Resumed, it fires from the next tick after now: ticks while paused never fire.
      return { ...s, paused, updatedAt: now, lastTick: paused ? s.lastTick : now };
    });
    this.d.logger.info({ audit: true, schedule: name, tenant, paused, by: who.id }, paused ? 'schedule paused' : 'schedule resumed');
    return { schedule: await this.view(stored.value, false) };
  }

  private async delete(req: NamedRequest, who: Principal): Promise<DeleteScheduleResponse> {
    const { tenant, name } = this.named(req, who);
    const gone = await this.d.schedules.delete(tenant, name);
    this.d.logger.info({ audit: true, schedule: name, tenant, by: who.id }, 'schedule deleted');
    return { schedule: { ...gone, nextTicks: [] } };
  }

  private async trigger(req: NamedRequest, who: Principal): Promise<TriggerScheduleResponse> {
    const { tenant, name } = this.named(req, who);
    this.d.gate.spendTenant(tenant, 1);
    for (let i = 0; i < TRIGGER_TRIES; i++) {
      const current = await this.d.schedules.mustGet(tenant, name);
      const note = `trigger by ${who.name || who.id}`;
      const done = await this.d.firing.run({ current, at: new Date(), run: true, note, advance: false, fence: [] });
      if (done) return { schedule: await this.view(done.stored.value, false), run: done.run };
    }
    throw new ApiError(Status.ABORTED, `schedule ${name} kept changing while it was triggered; retry`);
  }

  /** The tenant and name a request names, checked; another tenant's schedule is as absent as an unknown one. */
  private named(req: NamedRequest, who: Principal): { tenant: string; name: string } {
    const name = checkRecordName(req.name, 'name');
    return { tenant: callerTenant(who, req.tenant, 'tenant', () => `schedule ${name}`), name };
  }

  /** The schedule as the API shows it: its next ticks, and (with `states`) each run's job state now. */
  private async view(s: Schedule, states: boolean): Promise<Schedule> {
    const nextTicks =
      s.paused || !s.spec
        ? []
        : cronOf(s.spec)
            .nextTicks(new Date(), NEXT_TICKS)
            .map((d) => d.toISOString());
    const runs = await Promise.all(
      s.runs.map(async (r, i) => {
        const first = r.jobIds[0];
        // Every run's state for Get; the newest only in a list.
        if (!first || (!states && i > 0)) return r;
        return { ...r, state: (await this.d.jobState(first)) ?? 0 };
      }),
    );
    return { ...s, nextTicks, runs };
  }
}
