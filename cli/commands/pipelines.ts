/** `runmesh pipelines get | cancel`, and `runmesh submit -f FILE` (a pipeline file, or one job). */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { isValidation } from '../../control-plane/jobs/errors.js';
import { readSpecFile } from '../../control-plane/pipelines/spec-file.js';
import { Job, type JobSpec } from '../../proto/gen/runmesh/v1/job.js';
import { Pipeline, PipelineState } from '../../proto/gen/runmesh/v1/pipeline.js';
import { type Connection, unary, withConnection } from '../client.js';
import { colourFor, paint, stateColour } from '../colour.js';
import { relativeTime } from '../duration.js';
import { JobOutcomeError, UsageError } from '../errors.js';
import { keyValues, printJson, stateColumn, stateName, table } from '../format.js';
import { parseWhole, serverOption, tokenOption, type Target } from '../options.js';
import { EXIT } from '../outcome.js';

export function registerPipelines(program: Command): void {
  const pipelines = program.command('pipelines').description('inspect and cancel pipelines (runmesh submit -f FILE)');
  pipelines
    .command('ls')
    .description('list pipelines, newest submitted first, with how their jobs stand')
    .addOption(serverOption())
    .addOption(tokenOption())
    .option('--tenant <tenant>', "only this tenant's")
    .option('--limit <n>', 'at most this many pipelines', '20')
    .option('--json', 'print a JSON array of pipelines')
    .action((options: LsOptions) => ls(options));
  pipelines
    .command('get')
    .description("show a pipeline's jobs: what each needs, its state, why it waits")
    .argument('<id>', 'pipeline id (p_...)')
    .addOption(serverOption())
    .addOption(tokenOption())
    .option('--json', 'print the pipeline as JSON')
    .action((id: string, options: Target & { json?: boolean }) => get(id, options));
  pipelines
    .command('cancel')
    .description('cancel every job of a pipeline that has not ended')
    .argument('<id>', 'pipeline id (p_...)')
    .addOption(serverOption())
    .addOption(tokenOption())
    .option('--reason <reason>', "recorded in each job's timeline")
    .option('--json', 'print the pipeline as JSON')
    .action((id: string, options: Target & { reason?: string; json?: boolean }) => cancel(id, options));
}

interface LsOptions extends Target {
  tenant?: string;
  limit: string;
  json?: boolean;
}

/** Largest page the server hands out (ListPipelinesRequest.page_size). */
const MAX_PAGE = 50;

async function ls(options: LsOptions): Promise<void> {
  const limit = parseWhole('--limit', options.limit, 1, 10_000);
  const list = await withConnection(options, async (conn) => {
    const out: Pipeline[] = [];
    let pageToken = '';
    do {
      const req = { tenant: options.tenant ?? '', pageSize: Math.min(MAX_PAGE, limit - out.length), pageToken };
      const res = await unary(conn, 'PipelineService.ListPipelines', conn.pipelines.listPipelines.bind(conn.pipelines), req);
      out.push(...res.pipelines);
      pageToken = res.nextPageToken;
    } while (pageToken !== '' && out.length < limit);
    return out;
  });
  if (options.json) return printJson(list.map((p) => Pipeline.toJSON(p)));
  const now = Date.now();
  const rows = list.map((p) => [
    p.id,
    pipelineStateName(p.state),
    jobCounts(p),
    p.tenant,
    p.createdAt ? relativeTime(p.createdAt, now) : '-',
  ]);
  process.stdout.write(`${table(['ID', 'STATE', 'JOBS', 'TENANT', 'CREATED'], rows, stateColumn(1, colourFor(process.stdout)))}\n`);
}

/** `6 jobs: 3 succeeded, 1 failed, 2 skipped`. */
function jobCounts(p: Pipeline): string {
  const counts = new Map<string, number>();
  for (const j of p.jobs) counts.set(stateName(j.state), (counts.get(stateName(j.state)) ?? 0) + 1);
  return `${p.jobs.length} jobs: ${[...counts].map(([s, n]) => `${n} ${s}`).join(', ')}`;
}

async function get(id: string, options: Target & { json?: boolean }): Promise<void> {
  const pipeline = await withConnection(options, (conn) => getPipeline(conn, id));
  if (options.json) printJson(Pipeline.toJSON(pipeline));
  else process.stdout.write(`${pipelinePage(pipeline, Date.now(), colourFor(process.stdout))}\n`);
}

async function cancel(id: string, options: Target & { reason?: string; json?: boolean }): Promise<void> {
  const res = await withConnection(options, (conn) =>
    unary(conn, 'PipelineService.CancelPipeline', conn.pipelines.cancelPipeline.bind(conn.pipelines), { id, reason: options.reason ?? '' }),
  );
  if (!res.pipeline) throw new Error(`PipelineService.CancelPipeline returned no pipeline for ${id}`);
  if (options.json) return printJson(Pipeline.toJSON(res.pipeline));
  process.stdout.write(`${id}: ${res.cancelled} ${res.cancelled === 1 ? 'job' : 'jobs'} cancelled\n`);
}

async function getPipeline(conn: Connection, id: string): Promise<Pipeline> {
  const res = await unary(conn, 'PipelineService.GetPipeline', conn.pipelines.getPipeline.bind(conn.pipelines), { id });
  if (!res.pipeline) throw new Error(`PipelineService.GetPipeline returned no pipeline for ${id}`);
  return res.pipeline;
}

export const pipelineStateName = (s: PipelineState): string => (PipelineState[s] ?? 'unknown').replace('PIPELINE_STATE_', '').toLowerCase();

const NEEDS_WIDTH = 48;

/** `build, test (os=linux)` cut to a width, saying how many more. */
function needsText(needs: readonly string[]): string {
  if (needs.length === 0) return '-';
  let shown = 0;
  let text = '';
  for (const n of needs) {
    const next = shown === 0 ? n : `${text}, ${n}`;
    if (shown > 0 && next.length > NEEDS_WIDTH) break;
    text = next;
    shown++;
  }
  return shown < needs.length ? `${text} +${needs.length - shown} more` : text;
}

/** The summary, then one row per job in the batch's order: its needs, state, id, and why it waits or ended. */
export function pipelinePage(p: Pipeline, now: number, colour = false): string {
  const state = pipelineStateName(p.state);
  const head = keyValues([
    ['pipeline', p.id],
    ['tenant', p.tenant],
    ['state', colour ? paint(state, stateColour(state)) : state],
    ['created', p.createdAt ? relativeTime(p.createdAt, now) : undefined],
  ]);
  const rows = p.jobs.map((j) => [
    j.name + (j.allowFailure ? ' (may fail)' : ''),
    stateName(j.state),
    needsText(j.needs),
    j.id,
    j.reason || '-',
  ]);
  return `${head}\n\n${table(['JOB', 'STATE', 'NEEDS', 'ID', 'REASON'], rows, stateColumn(1, colour))}`;
}

/** The flags of `submit` that go with -f; the others describe a job, which the file does (given, they are refused, never ignored). */
const WITH_FILE = new Set(['server', 'token', 'file', 'tenant', 'wait', 'json', 'signKey']);

export interface FileSubmitOptions extends Target {
  file: string;
  tenant?: string;
  wait?: boolean;
  json?: boolean;
}

/**
 * `runmesh submit -f FILE`: a pipeline (SubmitBatch as a pipeline; prints its
 * id) or a one-job file (Submit; prints the job id, as submit does). With
 * --wait, a pipeline is followed until it ends: exit 0 when it succeeded,
 * 1 when it failed, 130 when cancelled.
 */
export async function submitFile(
  command: readonly string[],
  options: FileSubmitOptions,
  sign: (spec: JobSpec) => JobSpec,
  waitJob: (conn: Connection, job: Job) => Promise<void>,
): Promise<void> {
  if (command.length > 0) throw new UsageError('-f gives the jobs: no command after --');
  const flags = options as unknown as Record<string, unknown>;
  // --no-network is the one flag whose absence is a value (true).
  const given = Object.keys(flags).find((k) => !WITH_FILE.has(k) && flags[k] !== undefined && !(k === 'network' && flags[k] === true));
  if (given) throw new UsageError(`--${given.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}: with -f, the file says it`);
  if (options.wait && options.json) throw new UsageError('--json and --wait do not mix');
  let text: string;
  try {
    text = readFileSync(options.file, 'utf8');
  } catch (err) {
    throw new UsageError(`-f ${options.file}: ${(err as Error).message}`);
  }
  const file = fileSpecs(options.file, text);
  const specs = file.specs.map((s) => sign(withTenant(s, options.tenant)));
  await withConnection(options, async (conn) => {
    if (file.kind === 'job') {
      const res = await unary(conn, 'JobService.Submit', conn.jobs.submit.bind(conn.jobs), { spec: specs[0] });
      if (!res.job) throw new Error('JobService.Submit returned no job');
      if (options.wait) return waitJob(conn, res.job);
      return options.json ? printJson(Job.toJSON(res.job)) : void process.stdout.write(`${res.job.id}\n`);
    }
    const res = await unary(conn, 'JobService.SubmitBatch', conn.jobs.submitBatch.bind(conn.jobs), { specs, pipeline: true });
    const id = res.jobs[0]?.pipelineId ?? '';
    if (options.json) return printJson({ pipelineId: id, jobs: res.jobs.map((j) => Job.toJSON(j)) });
    process.stdout.write(`${id}\n`);
    if (options.wait) await waitPipeline(conn, id);
  });
}

/** The file's specs (control-plane/pipelines/spec-file.ts); a file-level tenant is taken. */
function fileSpecs(path: string, text: string): ReturnType<typeof readSpecFile> {
  try {
    return readSpecFile(path, text, { lenientNumbers: false, tenant: true });
  } catch (err) {
    if (isValidation(err)) throw new UsageError((err as Error).message, { cause: err });
    throw err;
  }
}

function withTenant(spec: JobSpec, tenant: string | undefined): JobSpec {
  if (tenant === undefined) return spec;
  if (spec.tenant && spec.tenant !== tenant) throw new UsageError(`--tenant ${tenant}: the file names tenant ${spec.tenant}`);
  return { ...spec, tenant };
}

const WAIT_POLL_MS = 500;

async function waitPipeline(conn: Connection, id: string): Promise<void> {
  let p = await getPipeline(conn, id);
  while (p.state === PipelineState.PIPELINE_STATE_RUNNING) {
    await sleep(WAIT_POLL_MS);
    p = await getPipeline(conn, id);
  }
  process.stderr.write(`${pipelinePage(p, Date.now(), colourFor(process.stderr))}\n`);
  if (p.state === PipelineState.PIPELINE_STATE_SUCCEEDED) return;
  const code = p.state === PipelineState.PIPELINE_STATE_CANCELLED ? EXIT.cancelled : 1;
  throw new JobOutcomeError(id, code, `pipeline ${id} ${pipelineStateName(p.state)}`);
}
