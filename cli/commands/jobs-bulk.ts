/**
 * `runmesh jobs retry` and the bulk forms `jobs retry --filter F` and
 * `jobs cancel --filter F`. Bulk work is done here, on the client: the jobs
 * matching the filter are listed (JobService.List), and without --yes only
 * counted ("would retry 12 jobs"); with --yes each one gets its own Retry or
 * Cancel call, authorized, tenant-checked and audited per job by the server.
 */
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { Command } from 'commander';
import { setTimeout as sleep } from 'node:timers/promises';
import { Job, JobState, ListRequest } from '../../proto/gen/runmesh/v1/job.js';
import { type Connection, unary, withConnection } from '../client.js';
import { CliError, RpcError, UsageError } from '../errors.js';
import { printJson, stateName } from '../format.js';
import { enumFlag, parsePair, serverOption, tokenOption, type Target } from '../options.js';

/** Every job matching a List filter (jobs.ts listJobs, passed in: jobs.ts registers these commands). */
export type ListAll = (conn: Connection, filter: ListRequest, limit: number) => Promise<{ jobs: Job[] }>;

const S = JobState;
/** What Retry re-drives: every end but success. */
const RETRYABLE: readonly JobState[] = [S.JOB_STATE_FAILED, S.JOB_STATE_DEAD, S.JOB_STATE_TIMED_OUT, S.JOB_STATE_CANCELLED];
/** What Cancel still changes. */
const CANCELLABLE: readonly JobState[] = [S.JOB_STATE_QUEUED, S.JOB_STATE_WAITING, S.JOB_STATE_ASSIGNED, S.JOB_STATE_RUNNING];
/** Calls in flight at once while acting on many jobs. */
const PARALLEL = 8;
/** Tries per job when the server says the caller goes too fast (RESOURCE_EXHAUSTED). */
const RATE_LIMIT_TRIES = 5;

export const FILTER_HELP =
  'act on every job matching FILTER: comma-separated state=S (repeatable, or S1|S2), name-prefix=P, tenant=T, label=K=V; ' +
  'prints how many match, and acts only with --yes';

export interface BulkOptions extends Target {
  filter?: string;
  yes?: boolean;
  reason?: string;
  json?: boolean;
}

/** A --filter, read into List's filters; `states` empty when none was named. */
export function parseJobFilter(text: string): Pick<ListRequest, 'states' | 'namePrefix' | 'tenant' | 'labels'> {
  const out = { states: [] as JobState[], namePrefix: '', tenant: '', labels: [] as string[] };
  const terms = text
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
  if (terms.length === 0) throw new UsageError('--filter: name at least one of state=, name-prefix=, tenant=, label=');
  for (const term of terms) {
    const [key, value] = parsePair('--filter', term);
    if (key === 'state') out.states.push(...value.split('|').map((s) => enumFlag<JobState>('--filter state', JobState, 'JOB_STATE_', s)));
    else if (key === 'name-prefix') out.namePrefix = value;
    else if (key === 'tenant') out.tenant = value;
    else if (key === 'label') out.labels.push(value);
    else throw new UsageError(`--filter: unknown key "${key}" (state, name-prefix, tenant, label)`);
  }
  return { ...out, labels: out.labels.join(',') };
}

/** What one bulk verb does to one job. */
interface Verb {
  /** "retry", "cancel". */
  name: string;
  /** "retried", "cancelled". */
  done: string;
  /** The states it can change; a filter naming another state is a usage error. */
  states: readonly JobState[];
  act(conn: Connection, id: string, reason: string): Promise<Job>;
}

export const RETRY: Verb = {
  name: 'retry',
  done: 'retried',
  states: RETRYABLE,
  act: async (conn, id, reason) => {
    const res = await unary(conn, 'JobService.Retry', conn.jobs.retry.bind(conn.jobs), { id, reason });
    if (!res.job) throw new Error(`JobService.Retry returned no job for ${id}`);
    return res.job;
  },
};

export const CANCEL: Verb = {
  name: 'cancel',
  done: 'cancelled',
  states: CANCELLABLE,
  act: async (conn, id, reason) => {
    const res = await unary(conn, 'JobService.Cancel', conn.jobs.cancel.bind(conn.jobs), { id, reason });
    if (!res.job) throw new Error(`JobService.Cancel returned no job for ${id}`);
    return res.job;
  },
};

/** The filter's states, kept to those `verb` can change (all of those when it names none). */
function statesFor(verb: Verb, named: readonly JobState[]): JobState[] {
  if (named.length === 0) return [...verb.states];
  const wrong = named.find((s) => !verb.states.includes(s));
  if (wrong !== undefined)
    throw new UsageError(`--filter state=${stateName(wrong)}: ${verb.name} acts on ${verb.states.map(stateName).join(', ')} jobs only`);
  return [...named];
}

/** One job's call, waited out and tried again while the server rate-limits the caller. */
async function actOn(verb: Verb, conn: Connection, id: string, reason: string): Promise<Job> {
  for (let tries = 1; ; tries++) {
    try {
      return await verb.act(conn, id, reason);
    } catch (err) {
      if (!(err instanceof RpcError && err.code === GrpcStatus.RESOURCE_EXHAUSTED) || tries >= RATE_LIMIT_TRIES) throw err;
      await sleep(250 * 2 ** tries);
    }
  }
}

/** `verb` on every job matching `options.filter`: counted only, or (--yes) done, one call per job. */
export async function bulk(verb: Verb, options: BulkOptions, listJobs: ListAll): Promise<void> {
  const parsed = parseJobFilter(options.filter ?? '');
  const filter = ListRequest.fromPartial({ ...parsed, states: statesFor(verb, parsed.states) });
  await withConnection(options, async (conn) => {
    const { jobs } = await listJobs(conn, filter, Number.POSITIVE_INFINITY);
    if (!options.yes) return report({ dryRun: true, matched: jobs.length, done: [], failed: [] }, verb, options);
    const done: Job[] = [];
    const failed: Array<{ id: string; error: string }> = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < jobs.length) {
        const id = jobs[next++]!.id;
        await actOn(verb, conn, id, options.reason ?? '').then(
          (job) => done.push(job),
          (err: unknown) => failed.push({ id, error: err instanceof Error ? err.message : String(err) }),
        );
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL, jobs.length) }, worker));
    report({ dryRun: false, matched: jobs.length, done, failed }, verb, options);
  });
}

interface BulkResult {
  dryRun: boolean;
  matched: number;
  done: Job[];
  failed: Array<{ id: string; error: string }>;
}

function report(r: BulkResult, verb: Verb, options: BulkOptions): void {
  const jobs = (n: number): string => `${n} ${n === 1 ? 'job' : 'jobs'}`;
  if (options.json) {
    printJson({ dryRun: r.dryRun, matched: r.matched, [verb.done]: r.done.map((j) => Job.toJSON(j)), failed: r.failed });
  } else if (r.dryRun) {
    process.stdout.write(`would ${verb.name} ${jobs(r.matched)}; run again with --yes\n`);
  } else {
    for (const j of r.done) process.stdout.write(`${j.id} ${stateName(j.state)}\n`);
    for (const f of r.failed) process.stderr.write(`${f.id}: ${f.error}\n`);
    process.stdout.write(`${verb.done} ${jobs(r.done.length)}${r.failed.length > 0 ? `; ${r.failed.length} failed` : ''}\n`);
  }
  if (r.failed.length > 0) throw new CliError(`${verb.name} failed for ${jobs(r.failed.length)} of ${r.matched}`);
}

/** Either job ids or --filter, not both, not neither. */
export function checkTargets(verb: Verb, ids: readonly string[], options: BulkOptions): void {
  if (options.filter !== undefined && ids.length > 0) throw new UsageError(`jobs ${verb.name}: give job ids or --filter, not both`);
  if (options.filter === undefined && ids.length === 0) throw new UsageError(`jobs ${verb.name}: give a job id, or --filter`);
  if (options.yes && options.filter === undefined) throw new UsageError('--yes goes with --filter');
}

export function registerRetry(jobs: Command, listJobs: ListAll): void {
  jobs
    .command('retry')
    .description(
      'run jobs that ended without success (failed, dead, timed out, cancelled) again: history kept, a new attempt sequence, queued again',
    )
    .argument('[ids...]', 'job ids')
    .addOption(serverOption())
    .addOption(tokenOption())
    .option('--filter <filter>', FILTER_HELP)
    .option('--yes', 'with --filter: act, not only count')
    .option('--reason <reason>', 'recorded in the job timeline')
    .option('--json', 'print the jobs as JSON')
    .action((ids: string[], options: BulkOptions) => retry(ids, options, listJobs));
}

async function retry(ids: readonly string[], options: BulkOptions, listJobs: ListAll): Promise<void> {
  checkTargets(RETRY, ids, options);
  if (options.filter !== undefined) return bulk(RETRY, options, listJobs);
  const done = await withConnection(options, (conn) => Promise.all(ids.map((id) => RETRY.act(conn, id, options.reason ?? ''))));
  if (options.json) return printJson(ids.length === 1 ? Job.toJSON(done[0]!) : done.map((j) => Job.toJSON(j)));
  for (const j of done) process.stdout.write(`${j.id} ${stateName(j.state)} (retry ${j.redrives}, from attempt ${j.sequenceStart})\n`);
}
