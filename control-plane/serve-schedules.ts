/**
 * Schedules and templates on a peer: their records in the store, the
 * leader's schedule loop, and ScheduleService and TemplateService, built on
 * the job service (templates submit through it, exactly as Submit and
 * SubmitBatch do; cancel-previous cancels through it).
 */
import type { Server } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { SubmitBatchRequest, SubmitRequest, type Job, type JobSpec } from '../proto/gen/runmesh/v1/job.js';
import type { Schedule } from '../proto/gen/runmesh/v1/schedule.js';
import type { Principal } from './auth/index.js';
import type { Gate } from './auth/index.js';
import type { JobServiceImpl } from './api/job-service.js';
import { ScheduleServiceImpl } from './api/schedule-service.js';
import { TemplateServiceImpl } from './api/template-service.js';
import { ValidationError } from './jobs/errors.js';
import type { JobRepo } from './jobs/repo.js';
import { isTerminal } from './jobs/state.js';
import type { JobTracker } from './jobs/tracker.js';
import { validateSpec } from './jobs/validate.js';
import { ScheduleFiring } from './schedules/firing.js';
import { decodeSchedule, encodeSchedule, SCHEDULE_LIMITS } from './schedules/record.js';
import { ScheduleTicker } from './schedules/ticker.js';
import type { Compare, Store } from './store/store.js';
import { TenantRecords } from './store/tenant-records.js';
import { Templates } from './templates/index.js';

export interface ScheduleParts {
  store: Store;
  repo: JobRepo;
  tracker: JobTracker;
  jobs: JobServiceImpl;
  gate: Gate;
  isLeader(): boolean;
  fence(): Compare[];
  logger: Logger;
}

/** Who cancels a run superseded under cancel-previous: the schedule machinery, in the job's own tenant. */
const SCHEDULER: Principal = { id: 'scheduler', name: 'scheduler (overlap: cancel-previous)', role: 'admin', tenants: 'all' };

/** Adds both services to `grpc` and starts the ticker; returns it (wake it on a leader change, close it at shutdown). */
export async function serveSchedules(p: ScheduleParts, grpc: Server): Promise<ScheduleTicker> {
  const log = p.logger.child({ part: 'schedules' });
  const templates = new Templates(p.store);
  const schedules = new TenantRecords<Schedule>(p.store, {
    prefix: '/runmesh/schedules/',
    kind: 'schedule',
    perTenant: SCHEDULE_LIMITS.perTenant,
    encode: encodeSchedule,
    decode: decodeSchedule,
  });
  /** A schedule's template makes one job (a pipeline's jobs need the batch's graph, which a tick does not build). */
  const expand = async (tenant: string, name: string, params: Record<string, string>) => {
    const file = await templates.fill(tenant, name, params);
    if (file.kind !== 'job') throw new ValidationError('spec.template', `template ${name} is a pipeline; a schedule takes a job template`);
    return file.specs.map((s) => validateSpec({ ...s, tenant }, 'spec.template'));
  };
  const firing = new ScheduleFiring({
    schedules,
    draft: (spec, now) => p.repo.draft(spec, now),
    jobKey: (id) => p.repo.key(id),
    expand,
    isActive: (id) => {
      const v = p.tracker.get(id);
      return v !== undefined && !isTerminal(v.record.job.state);
    },
    cancel: async (id, reason) => void (await p.jobs.cancel({ id, reason }, SCHEDULER)),
    logger: log,
  });
  const ticker = new ScheduleTicker({
    store: p.store,
    schedules,
    firing,
    isLeader: () => p.isLeader(),
    fence: () => p.fence(),
    logger: log,
  });
  await ticker.start();
  new ScheduleServiceImpl({
    gate: p.gate,
    schedules,
    firing,
    checkTemplate: async (tenant, name, params) => void (await expand(tenant, name, params)),
    jobState: async (id) => (p.tracker.get(id) ?? (await p.repo.get(id)))?.record.job.state,
    logger: log,
  }).addToServer(grpc);
  new TemplateServiceImpl({
    gate: p.gate,
    templates,
    submit: (specs, kind, who) => submitSpecs(p.jobs, specs, kind, who),
    logger: log,
  }).addToServer(grpc);
  return ticker;
}

/** One job through Submit; a pipeline (or several jobs) through SubmitBatch. */
export async function submitSpecs(jobs: JobServiceImpl, specs: JobSpec[], kind: 'job' | 'pipeline', who: Principal): Promise<Job[]> {
  if (kind === 'job' && specs.length === 1) {
    const res = await jobs.submit(SubmitRequest.fromPartial({ spec: specs[0] }), who);
    return res.job ? [res.job] : [];
  }
  return (await jobs.submitBatch(SubmitBatchRequest.fromPartial({ specs, pipeline: kind === 'pipeline' }), who)).jobs;
}
