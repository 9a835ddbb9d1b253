/** Promise-shaped ScheduleService and TemplateService calls for tests, and the jobs a schedule started. */
import { credentials, type ServiceError } from '@grpc/grpc-js';
import { JobServiceClient, ListRequest, type Job } from '../../proto/gen/runmesh/v1/job.js';
import { ScheduleServiceClient, ScheduleSpec, type Schedule, type ScheduleRun } from '../../proto/gen/runmesh/v1/schedule.js';
import { bearer } from './client.js';

type Callback<T> = (err: ServiceError | null, res: T) => void;

function call<T>(fn: (cb: Callback<T>) => unknown): Promise<T> {
  return new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res))));
}

export class ScheduleClient {
  readonly schedules: ScheduleServiceClient;
  private readonly jobs: JobServiceClient;

  constructor(address: string, token: string) {
    const interceptors = [bearer(token)];
    this.schedules = new ScheduleServiceClient(address, credentials.createInsecure(), { interceptors });
    this.jobs = new JobServiceClient(address, credentials.createInsecure(), { interceptors });
  }

  async create(spec: Partial<ScheduleSpec>): Promise<Schedule> {
    return (await call<{ schedule?: Schedule }>((cb) => this.schedules.createSchedule({ spec: ScheduleSpec.fromPartial(spec) }, cb)))
      .schedule!;
  }

  async get(name: string, tenant = ''): Promise<Schedule> {
    return (await call<{ schedule?: Schedule }>((cb) => this.schedules.getSchedule({ name, tenant }, cb))).schedule!;
  }

  async pause(name: string): Promise<Schedule> {
    return (await call<{ schedule?: Schedule }>((cb) => this.schedules.pauseSchedule({ name, tenant: '' }, cb))).schedule!;
  }

  async trigger(name: string, tenant = ''): Promise<ScheduleRun> {
    return (await call<{ run?: ScheduleRun }>((cb) => this.schedules.triggerSchedule({ name, tenant }, cb))).run!;
  }

  async list(tenant = ''): Promise<Schedule[]> {
    return (await call<{ schedules: Schedule[] }>((cb) => this.schedules.listSchedules({ tenant }, cb))).schedules;
  }

  /** Every stored job `schedule` started, oldest tick first. */
  async jobsOf(schedule: string): Promise<Job[]> {
    const out: Job[] = [];
    let pageToken = '';
    do {
      const res = await call<{ jobs: Job[]; nextPageToken: string }>((cb) =>
        this.jobs.list(ListRequest.fromPartial({ pageSize: 1000, pageToken }), cb),
      );
      out.push(...res.jobs.filter((j) => j.schedule === schedule));
      pageToken = res.nextPageToken;
    } while (pageToken);
    return out.sort((a, b) => (a.scheduledAt ?? '').localeCompare(b.scheduledAt ?? ''));
  }

  close(): void {
    this.schedules.close();
    this.jobs.close();
  }
}

/** The ticks (whole seconds apart) from the first to the last of `jobs`' scheduled times that no job has; and the times that more than one job has. */
export function tickGaps(jobs: readonly Job[]): { missing: string[]; twice: string[] } {
  const times = jobs.map((j) => Date.parse(j.scheduledAt ?? ''));
  const seen = new Map<number, number>();
  for (const t of times) seen.set(t, (seen.get(t) ?? 0) + 1);
  const twice = [...seen].filter(([, n]) => n > 1).map(([t]) => new Date(t).toISOString());
  const missing: string[] = [];
  if (times.length > 0)
    for (let t = Math.min(...times); t <= Math.max(...times); t += 1000) if (!seen.has(t)) missing.push(new Date(t).toISOString());
  return { missing, twice };
}
