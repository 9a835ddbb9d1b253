/**
 * The console's job calls, on the JobService's own implementation (the same
 * tenant checks, validation and lifecycle as over gRPC): a newest-first page
 * with filters, one job, cancel, and retry (the same spec submitted again).
 */
import { JobState } from '../../proto/gen/runmesh/v1/job.js';
import type { Principal } from '../auth/index.js';
import type { JobServiceImpl } from '../api/job-service.js';
import { invalid } from '../api/status.js';
import { jobDetail, jobSummary, stateName } from './views.js';
import type { JobDetail, JobPage, JobSummary } from './wire.js';

type Jobs = Pick<JobServiceImpl, 'get' | 'list' | 'cancel' | 'submit'>;

/** Jobs listed per page at most (the page renders only the rows in view, so a thousand stay smooth). */
export const MAX_LIMIT = 1000;
/** Jobs read from the store per List call while filtering. */
const SCAN_PAGE = 1000;

export interface JobFilter {
  states: JobState[];
  tenant: string;
  /** Text the job's selector contains ("gpu", "os=linux"). */
  label: string;
  /** Text the job's name contains. */
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

function keep(f: JobFilter, j: JobSummary): boolean {
  if (f.before && j.id >= f.before) return false;
  if (f.label && !j.selector.includes(f.label)) return false;
  if (f.name && !j.name.includes(f.name)) return false;
  const created = Date.parse(j.createdAt);
  if (f.since && created < f.since) return false;
  if (f.until && created >= f.until) return false;
  return true;
}

/**
 * Newest first. Job ids sort by submission time, and List reads them oldest
 * first, so the whole retained set is scanned (bounded by the retention
 * settings) and the newest matches kept.
 */
export async function listJobs(jobs: Jobs, f: JobFilter, who: Principal): Promise<JobPage> {
  const matched: JobSummary[] = [];
  let pageToken = '';
  do {
    const page = await jobs.list({ states: f.states, namePrefix: '', tenant: f.tenant, pageSize: SCAN_PAGE, pageToken }, who);
    for (const j of page.jobs) {
      const s = jobSummary(j);
      if (keep(f, s)) matched.push(s);
    }
    pageToken = page.nextPageToken;
  } while (pageToken);
  matched.reverse();
  const out = matched.slice(0, f.limit);
  return { jobs: out, next: matched.length > f.limit ? (out.at(-1)?.id ?? '') : '', total: matched.length };
}

export async function getJob(jobs: Jobs, id: string, who: Principal): Promise<JobDetail> {
  const { job } = await jobs.get({ id }, who);
  return jobDetail(job!);
}

export async function cancelJob(jobs: Jobs, id: string, who: Principal): Promise<JobSummary> {
  const { job } = await jobs.cancel({ id, reason: `cancelled from the console by ${who.name || who.id}` }, who);
  return jobSummary(job!);
}

/** Submits the job's spec again as a new job (without its idempotency key, which would name the old one). */
export async function retryJob(jobs: Jobs, id: string, who: Principal): Promise<JobSummary> {
  const { job } = await jobs.get({ id }, who);
  const res = await jobs.submit({ spec: { ...job!.spec!, idempotencyKey: '' } }, who);
  return jobSummary(res.job!);
}
