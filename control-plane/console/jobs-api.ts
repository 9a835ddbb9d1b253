/**
 * The console's job calls, on the JobService's own implementation (the same
 * tenant checks, validation and lifecycle as over gRPC): a newest-first page
 * with filters (List's own), one job, cancel, and retry (JobService.Retry:
 * the same job queued again, its history kept).
 */
import { JobState, type ListRequest } from '../../proto/gen/runmesh/v1/job.js';
import type { Principal } from '../auth/index.js';
import type { JobServiceImpl } from '../api/job-service.js';
import { invalid } from '../api/status.js';
import { jobDetail, jobSummary, stateName } from './views.js';
import type { JobDetail, JobPage, JobSummary } from './wire.js';

type Jobs = Pick<JobServiceImpl, 'get' | 'list' | 'cancel' | 'retry'>;

/** Jobs listed per page at most (the page renders only the rows in view, so a thousand stay smooth). */
export const MAX_LIMIT = 1000;

export interface JobFilter {
  states: JobState[];
  tenant: string;
  /** Agent labels the job's selector requires (`gpu`, `os=linux`): ListRequest.labels. */
  label: string;
  /** Text the job's name starts with. */
  name: string;
  /** Created at or after / before (ms since the epoch; 0: no bound). */
  since: number;
  until: number;
  /** Only jobs older than this id (the previous page's `next`). */
  before: string;
  limit: number;
}

/** State names as the console writes them ("timed_out") → states. */
const STATES: Record<string, JobState> = Object.fromEntries(
  [
    JobState.JOB_STATE_QUEUED,
    JobState.JOB_STATE_WAITING,
    JobState.JOB_STATE_ASSIGNED,
    JobState.JOB_STATE_RUNNING,
    JobState.JOB_STATE_SUCCEEDED,
    JobState.JOB_STATE_FAILED,
    JobState.JOB_STATE_CANCELLED,
    JobState.JOB_STATE_TIMED_OUT,
    JobState.JOB_STATE_DEAD,
    JobState.JOB_STATE_SKIPPED,
  ].map((s) => [stateName(s), s]),
);

function time(q: URLSearchParams, key: string): number {
  const v = q.get(key);
  if (!v) return 0;
  const ms = Date.parse(v);
  if (Number.isNaN(ms)) throw invalid(key, `not a time: ${v.slice(0, 40)}`);
  return ms;
}

/** The filter in a query string (`state=running&state=queued&tenant=a&label=gpu&name=build&since=…&until=…&before=…&limit=…`). */
export function parseFilter(q: URLSearchParams): JobFilter {
  const states = q.getAll('state').map((s) => {
    const v = STATES[s];
    if (v === undefined) throw invalid('state', `unknown: ${s.slice(0, 20)}`);
    return v;
  });
  const limit = Number(q.get('limit') ?? 100);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw invalid('limit', `1 to ${MAX_LIMIT}`);
  const before = q.get('before') ?? '';
  return {
    states,
    tenant: q.get('tenant') ?? '',
    label: q.get('label') ?? '',
    name: q.get('name') ?? '',
    since: time(q, 'since'),
    until: time(q, 'until'),
    before,
    limit,
  };
}

/**
 * Newest first, filtered and ordered by List itself (a reverse scan of the job
 * keys, which sort by submission). `next` is set only when an older job does
 * match: List's own token may point past the last match, so one more job is
 * asked for to tell.
 */
export async function listJobs(jobs: Jobs, f: JobFilter, who: Principal): Promise<JobPage> {
  const request = (pageSize: number, pageToken: string): ListRequest => ({
    states: f.states,
    namePrefix: f.name,
    tenant: f.tenant,
    labels: f.label,
    createdAfter: f.since ? new Date(f.since).toISOString() : undefined,
    createdBefore: f.until ? new Date(f.until).toISOString() : undefined,
    oldestFirst: false,
    pageSize,
    pageToken,
  });
  const page = await jobs.list(request(f.limit, f.before), who);
  const out = page.jobs.map(jobSummary);
  const last = out.at(-1)?.id ?? '';
  const older = page.nextPageToken && last ? await jobs.list(request(1, last), who) : undefined;
  return { jobs: out, next: older && older.jobs.length > 0 ? last : '' };
}

export async function getJob(jobs: Jobs, id: string, who: Principal): Promise<JobDetail> {
  const { job } = await jobs.get({ id }, who);
  return jobDetail(job!);
}

export async function cancelJob(jobs: Jobs, id: string, who: Principal): Promise<JobSummary> {
  const { job } = await jobs.cancel({ id, reason: `cancelled from the console by ${who.name || who.id}` }, who);
  return jobSummary(job!);
}

/**
 * Re-drives a job that failed, died, timed out or was cancelled: the same job
 * queued again with a new attempt sequence (JobService.Retry), so its history
 * and its place in a pipeline are kept.
 */
export async function retryJob(jobs: Jobs, id: string, who: Principal): Promise<JobSummary> {
  const { job } = await jobs.retry({ id, reason: `from the console by ${who.name || who.id}` }, who);
  return jobSummary(job!);
}
