/** `runmesh jobs ls | get | cancel | retry`. */
import type { Command } from 'commander';
import { Job, JobState, type ListRequest } from '../../proto/gen/runmesh/v1/job.js';
import { type Connection, unary, withConnection } from '../client.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { colourFor } from '../colour.js';
import { parseDuration } from '../duration.js';
import { UsageError } from '../errors.js';
import { printJson, stateName } from '../format.js';
import { describeEnd, isTerminal } from '../outcome.js';
import { withSpinner } from '../spinner.js';
import { collect, enumFlag, parseWhole, serverOption, tokenOption } from '../options.js';
import { jobPage, jobsTable } from './job-view.js';
import { bulk, CANCEL, checkTargets, FILTER_HELP, registerRetry, type BulkOptions } from './jobs-bulk.js';

/** Largest page the server hands out (ListRequest.page_size). */
const MAX_PAGE = 1000;

interface LsOptions {
  server: string;
  state?: string[];
  namePrefix?: string;
  tenant?: string;
  label?: string[];
  since?: string;
  until?: string;
  oldestFirst?: boolean;
  limit: string;
  all?: boolean;
  json?: boolean;
}

export function registerJobs(program: Command): void {
  const jobs = program.command('jobs').description('list, inspect and cancel jobs');
  jobs
    .command('ls')
    .description('list jobs, newest submitted first')
    .addOption(serverOption())
    .addOption(tokenOption())
    .option('--state <state>', 'only jobs in this state (repeatable)', collect)
    .option('--name-prefix <prefix>', 'only jobs whose name starts with this')
    .option('--tenant <tenant>', 'only jobs of this tenant')
    .option('--label <k=v>', 'only jobs that require this agent label, k=v or just k (repeatable)', collect)
    .option('--since <when>', 'only jobs submitted since then: an ISO time, or a duration ago (1h, 7d)')
    .option('--until <when>', 'only jobs submitted before then: an ISO time, or a duration ago')
    .option('--oldest-first', 'list the oldest submitted first')
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
    .description('cancel a job (running attempts get SIGTERM, then SIGKILL after the grace period), or every job --filter matches')
    .argument('[id]', 'job id')
    .addOption(serverOption())
    .addOption(tokenOption())
    .option('--reason <reason>', 'recorded in the job timeline')
    .option('--no-wait', 'return once the cancel is recorded, without waiting for a running job to end')
    .option('--filter <filter>', FILTER_HELP)
    .option('--yes', 'with --filter: act, not only count')
    .option('--json', 'print the job as JSON')
    .action((id: string | undefined, options: CancelOptions & BulkOptions) => {
      checkTargets(CANCEL, id === undefined ? [] : [id], options);
      // Bulk cancels do not wait for running jobs to end: each line says what its Cancel call answered.
      return options.filter === undefined ? cancel(id!, options) : bulk(CANCEL, options, listJobs);
    });
  registerRetry(jobs, listJobs);
}

async function ls(options: LsOptions): Promise<void> {
  const limit = options.all ? Number.POSITIVE_INFINITY : parseWhole('--limit', options.limit, 1, 1_000_000);
  const now = Date.now();
  const filter: ListRequest = {
    states: (options.state ?? []).map((s) => enumFlag<JobState>('--state', JobState, 'JOB_STATE_', s)),
    namePrefix: options.namePrefix ?? '',
    tenant: options.tenant ?? '',
    pageSize: 0,
    pageToken: '',
    oldestFirst: options.oldestFirst ?? false,
    labels: (options.label ?? []).join(','),
    createdAfter: when('--since', options.since, now),
    createdBefore: when('--until', options.until, now),
  };
  const { jobs, beyond } = await withConnection(options, async (conn) => {
    const page = await listJobs(conn, filter, limit);
    return { jobs: page.jobs, beyond: page.more ? await countBeyond(conn, filter, page.next) : undefined };
  });
  if (options.json) printJson(jobs.map((j) => Job.toJSON(j)));
  else process.stdout.write(`${jobsTable(jobs, Date.now(), colourFor(process.stdout))}\n`);
  // On stderr, so a script reading the table or the JSON is not thrown by it.
  if (beyond && beyond.count > 0) {
    const how = beyond.exact ? `${beyond.count}` : `over ${beyond.count}`;
    process.stderr.write(
      `${how} more ${beyond.count === 1 && beyond.exact ? 'job matches' : 'jobs match'} than the ${jobs.length} shown: raise --limit, or --all\n`,
    );
  }
}

/** Jobs a probe past the last shown looks at, at most: beyond that, "over N more". */
const PROBE = 100;

/**
 * How many more jobs match past `next`, read with one List call of up to
 * PROBE jobs: exact when that call reached the end. List's token can point
 * past the last match, so this also tells "no more after all" (count 0).
 */
async function countBeyond(conn: Connection, filter: ListRequest, next: string): Promise<{ count: number; exact: boolean }> {
  if (!next) return { count: 0, exact: false };
  const res = await unary(conn, 'JobService.List', conn.jobs.list.bind(conn.jobs), { ...filter, pageSize: PROBE, pageToken: next });
  return { count: res.jobs.length, exact: res.nextPageToken === '' };
}

/** An ISO time, or a duration before `now` (`90m` ago); undefined when the flag is absent. */
function when(flag: string, text: string | undefined, now: number): string | undefined {
  if (text === undefined) return undefined;
  if (/^\d{4}-\d\d-\d\d/.test(text)) {
    const ms = Date.parse(text);
    if (Number.isNaN(ms)) throw new UsageError(`${flag}: not a time: "${text}"`);
    return new Date(ms).toISOString();
  }
  try {
    return new Date(now - parseDuration(text) * 1000).toISOString();
  } catch {
    throw new UsageError(`${flag}: expected an ISO time (2026-12-01T08:00Z) or a duration ago (90m, 7d), got "${text}"`);
  }
}

/** Pages through List until `limit` jobs or the last page; `more` when the server may have further matches, from `next`. */
export async function listJobs(
  conn: Connection,
  filter: ListRequest,
  limit: number,
): Promise<{ jobs: Job[]; more: boolean; next: string }> {
  const jobs: Job[] = [];
  let pageToken = '';
  do {
    const pageSize = Math.min(MAX_PAGE, limit - jobs.length);
    const res = await unary(conn, 'JobService.List', conn.jobs.list.bind(conn.jobs), { ...filter, pageSize, pageToken });
    jobs.push(...res.jobs);
    // An empty page with a token would otherwise loop forever against a misbehaving server.
    pageToken = res.jobs.length > 0 ? res.nextPageToken : '';
  } while (pageToken !== '' && jobs.length < limit);
  // `next` continues after the last job returned (a server that sent more than asked for: after the last shown).
  const shown = jobs.slice(0, limit);
  const next = jobs.length > limit ? (shown.at(-1)?.id ?? '') : pageToken;
  return { jobs: shown, more: pageToken !== '' || jobs.length > limit, next };
}

async function get(id: string, options: { server: string; json?: boolean }): Promise<void> {
  const res = await withConnection(options, (conn) => unary(conn, 'JobService.Get', conn.jobs.get.bind(conn.jobs), { id }));
  if (!res.job) throw new Error(`JobService.Get returned no job for ${id}`);
  if (options.json) printJson(Job.toJSON(res.job));
  else process.stdout.write(`${jobPage(res.job, Date.now())}\n`);
}

interface CancelOptions {
  server: string;
  reason?: string;
  wait: boolean;
  json?: boolean;
}

/** How often `jobs cancel` asks whether a running job has ended. */
const CANCEL_POLL_MS = 200;
/** Beyond the job's grace period (SIGTERM to SIGKILL), for the agent to report the end. */
const CANCEL_SLACK_MS = 5_000;

/**
 * Cancels a job and prints the state it is left in: a queued job ends at
 * once; a running one is waited for (its grace period and a few seconds more)
 * so the line says `cancelled`, not the `running` the Cancel call answers with.
 */
async function cancel(id: string, options: CancelOptions): Promise<void> {
  const job = await withConnection(options, async (conn) => {
    const res = await unary(conn, 'JobService.Cancel', conn.jobs.cancel.bind(conn.jobs), { id, reason: options.reason ?? '' });
    if (!res.job) throw new Error(`JobService.Cancel returned no job for ${id}`);
    const asked = res.job;
    if (!options.wait || isTerminal(asked.state)) return asked;
    return withSpinner(`waiting for ${id} to end`, () => untilEnded(conn, asked), { json: options.json });
  });
  if (options.json) return printJson(Job.toJSON(job));
  const line = isTerminal(job.state) ? `${job.id} ${describeEnd(job)}` : `${job.id} ${stateName(job.state)} (cancel requested)`;
  process.stdout.write(`${line}\n`);
}

async function untilEnded(conn: Connection, job: Job): Promise<Job> {
  const deadline = Date.now() + (job.spec?.cancelGraceSeconds || 10) * 1000 + CANCEL_SLACK_MS;
  let current = job;
  while (!isTerminal(current.state) && Date.now() < deadline) {
    await sleep(CANCEL_POLL_MS);
    const res = await unary(conn, 'JobService.Get', conn.jobs.get.bind(conn.jobs), { id: job.id });
    current = res.job ?? current;
  }
  return current;
}
