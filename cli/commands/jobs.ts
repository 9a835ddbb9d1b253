/** `runmesh jobs ls | get | cancel`. */
import type { Command } from 'commander';
import { Job, JobState, type ListRequest } from '../../proto/gen/runmesh/v1/job.js';
import { type Connection, unary, withConnection } from '../client.js';
import { printJson, stateName } from '../format.js';
import { collect, enumFlag, parseWhole, serverOption, tokenOption } from '../options.js';
import { jobPage, jobsTable } from './job-view.js';

/** Largest page the server hands out (ListRequest.page_size). */
const MAX_PAGE = 1000;

interface LsOptions {
  server: string;
  state?: string[];
  namePrefix?: string;
  tenant?: string;
  limit: string;
  all?: boolean;
  json?: boolean;
}

export function registerJobs(program: Command): void {
  const jobs = program.command('jobs').description('list, inspect and cancel jobs');
  jobs
    .command('ls')
    .description('list jobs')
    .addOption(serverOption())
    .addOption(tokenOption())
    .option('--state <state>', 'only jobs in this state (repeatable)', collect)
    .option('--name-prefix <prefix>', 'only jobs whose name starts with this')
    .option('--tenant <tenant>', 'only jobs of this tenant')
    .option('--limit <n>', 'at most this many jobs', '100')
    .option('--all', 'every job that matches (no --limit)')
    .option('--json', 'print a JSON array of jobs')
    .action((options: LsOptions) => ls(options));
  jobs
    .command('get')
    .description('show one job: attempts, timeline, why it waits')
    .argument('<id>', 'job id')
    .addOption(serverOption())
    .addOption(tokenOption())
    .option('--json', 'print the job as JSON')
    .action((id: string, options: { server: string; json?: boolean }) => get(id, options));
  jobs
    .command('cancel')
    .description('cancel a job (running attempts get SIGTERM, then SIGKILL after the grace period)')
    .argument('<id>', 'job id')
    .addOption(serverOption())
    .addOption(tokenOption())
    .option('--reason <reason>', 'recorded in the job timeline')
    .option('--json', 'print the job as JSON')
    .action((id: string, options: { server: string; reason?: string; json?: boolean }) => cancel(id, options));
}

async function ls(options: LsOptions): Promise<void> {
  const limit = options.all ? Number.POSITIVE_INFINITY : parseWhole('--limit', options.limit, 1, 1_000_000);
  const filter: ListRequest = {
    states: (options.state ?? []).map((s) => enumFlag<JobState>('--state', JobState, 'JOB_STATE_', s)),
    namePrefix: options.namePrefix ?? '',
    tenant: options.tenant ?? '',
    pageSize: 0,
    pageToken: '',
  };
  const { jobs, more } = await withConnection(options, (conn) => listJobs(conn, filter, limit));
  if (options.json) printJson(jobs.map((j) => Job.toJSON(j)));
  else process.stdout.write(`${jobsTable(jobs, Date.now())}\n`);
  // On stderr, so a script reading the table or the JSON is not thrown by it.
  if (more) process.stderr.write(`more jobs match than the ${jobs.length} shown: raise --limit, or --all\n`);
}

/** Pages through List until `limit` jobs or the last page; `more` when the server has further matches. */
export async function listJobs(conn: Connection, filter: ListRequest, limit: number): Promise<{ jobs: Job[]; more: boolean }> {
  const jobs: Job[] = [];
  let pageToken = '';
  do {
    const pageSize = Math.min(MAX_PAGE, limit - jobs.length);
    const res = await unary(conn, 'JobService.List', conn.jobs.list.bind(conn.jobs), { ...filter, pageSize, pageToken });
    jobs.push(...res.jobs);
    // An empty page with a token would otherwise loop forever against a misbehaving server.
    pageToken = res.jobs.length > 0 ? res.nextPageToken : '';
  } while (pageToken !== '' && jobs.length < limit);
  return { jobs: jobs.slice(0, limit), more: pageToken !== '' || jobs.length > limit };
}

async function get(id: string, options: { server: string; json?: boolean }): Promise<void> {
  const res = await withConnection(options, (conn) => unary(conn, 'JobService.Get', conn.jobs.get.bind(conn.jobs), { id }));
  if (!res.job) throw new Error(`JobService.Get returned no job for ${id}`);
  if (options.json) printJson(Job.toJSON(res.job));
  else process.stdout.write(`${jobPage(res.job, Date.now())}\n`);
}

async function cancel(id: string, options: { server: string; reason?: string; json?: boolean }): Promise<void> {
  const res = await withConnection(options, (conn) =>
    unary(conn, 'JobService.Cancel', conn.jobs.cancel.bind(conn.jobs), { id, reason: options.reason ?? '' }),
  );
  const job = res.job;
  if (options.json) return printJson(job ? Job.toJSON(job) : { id, cancelRequested: true });
  process.stdout.write(job ? `${job.id} ${stateName(job.state)}\n` : `${id} cancel requested\n`);
}
