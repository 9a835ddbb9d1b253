/**
 * PipelineService: a pipeline's graph and its cancel. The jobs are the
 * JobService's: read from the store, seen only within the caller's tenants
 * (another tenant's pipeline is NOT_FOUND), and cancelled one by one through
 * JobService.Cancel's own path.
 */
import type { Server } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { JobState, type CancelRequest, type CancelResponse } from '../../proto/gen/runmesh/v1/job.js';
import {
  PipelineServiceService,
  type CancelPipelineRequest,
  type CancelPipelineResponse,
  type GetPipelineRequest,
  type GetPipelineResponse,
  type ListPipelinesRequest,
  type ListPipelinesResponse,
  type Pipeline,
} from '../../proto/gen/runmesh/v1/pipeline.js';
import { canSee, type Gate, type Principal } from '../auth/index.js';
import type { JobRecord } from '../jobs/record.js';
import type { JobRepo } from '../jobs/repo.js';
import { isTerminal } from '../jobs/state.js';
import { PIPELINE_LIMIT } from '../pipelines/graph.js';
import { isPipelineId } from '../pipelines/ids.js';
import { pipelineView } from '../pipelines/view.js';
import { auditedUnary, guardedUnary } from './guard.js';
import { invalid, notFound } from './status.js';

export interface PipelineServiceDeps {
  gate: Gate;
  repo: JobRepo;
  logger: Logger;
  /** JobService.Cancel's handler, for one job of the pipeline. */
  cancelJob(req: CancelRequest, who: Principal): Promise<CancelResponse>;
}

/** ListPipelines: pipelines per page at most, and pipelines one call looks at. */
const MAX_LIST_PAGE = 50;
const LIST_SCAN = 200;

/** Jobs read from the store at once. */
const READ_CONCURRENCY = 64;

export class PipelineServiceImpl {
  constructor(private readonly d: PipelineServiceDeps) {}

  addToServer(server: Server): void {
    const { gate, logger: log } = this.d;
    server.addService(PipelineServiceService, {
      getPipeline: guardedUnary(gate, 'PipelineService.GetPipeline', log, (req: GetPipelineRequest, who) => this.get(req, who)),
      listPipelines: guardedUnary(gate, 'PipelineService.ListPipelines', log, (req: ListPipelinesRequest, who) => this.list(req, who)),
      cancelPipeline: auditedUnary(
        gate,
        'PipelineService.CancelPipeline',
        log,
        (req: CancelPipelineRequest, who) => this.cancel(req, who),
        (req, res: CancelPipelineResponse | undefined) => (res ? `${req.id} (${res.cancelled} jobs)` : req.id),
      ),
    });
  }

  async get(req: GetPipelineRequest, who: Principal): Promise<GetPipelineResponse> {
    return { pipeline: pipelineView(req.id, await this.jobs(req.id, who)) };
  }

  /**
   * The caller's pipelines, newest first. One call looks at no more than
   * LIST_SCAN pipelines (one store read each, two for the caller's), so
   * another tenant's many pipelines cost a bounded amount per page.
   */
  async list(req: ListPipelinesRequest, who: Principal): Promise<ListPipelinesResponse> {
    if (req.pageSize > MAX_LIST_PAGE) throw invalid('page_size', `${req.pageSize} exceeds the limit of ${MAX_LIST_PAGE}`);
    if (req.pageToken && !isPipelineId(req.pageToken)) throw invalid('page_token', 'not one this service gave');
    // Another tenant's pipelines are not there for this caller: asking for that tenant lists nothing.
    if (req.tenant && !canSee(who, req.tenant)) return { pipelines: [], nextPageToken: '' };
    const want = req.pageSize || 10;
    const ids = await this.d.repo.pipelineIds(req.pageToken, LIST_SCAN);
    const pipelines: Pipeline[] = [];
    let last = '';
    for (const id of ids) {
      if (pipelines.length === want) break;
      last = id;
      const first = (await this.d.repo.pipelineJobIds(id, 1))[0];
      const tenant = first && (await this.d.repo.get(first))?.record.job.spec.tenant;
      if (!tenant || !canSee(who, tenant) || (req.tenant && tenant !== req.tenant)) continue;
      const records = await this.read(id);
      if (records.length > 0) pipelines.push(pipelineView(id, records));
    }
    const more = ids.length > 0 && (last !== ids.at(-1) || ids.length === LIST_SCAN);
    return { pipelines, nextPageToken: more ? last : '' };
  }

  /** Cancels the jobs that have not ended: those held for their needs first, so none is released meanwhile. */
  async cancel(req: CancelPipelineRequest, who: Principal): Promise<CancelPipelineResponse> {
    const jobs = (await this.jobs(req.id, who)).filter((r) => !isTerminal(r.job.state));
    const reason = req.reason || `pipeline ${req.id} cancelled`;
    // Cancelled now, or told to stop (still running); one that ended by itself meanwhile does not count.
    const cancelOne = async (r: JobRecord): Promise<boolean> => {
      const { job } = await this.d.cancelJob({ id: r.job.id, reason }, who);
      return job !== undefined && (job.state === JobState.JOB_STATE_CANCELLED || !isTerminal(job.state));
    };
    const held = jobs.filter((r) => r.held);
    const rest = jobs.filter((r) => !r.held);
    const done = [...(await Promise.all(held.map(cancelOne))), ...(await Promise.all(rest.map(cancelOne)))];
    const cancelled = done.filter(Boolean).length;
    this.d.logger.info({ pipeline_id: req.id, cancelled, token_id: who.id }, 'pipeline cancelled');
    return { pipeline: pipelineView(req.id, await this.jobs(req.id, who)), cancelled };
  }

  /** The pipeline's stored jobs, in submission order; NOT_FOUND when none is, or they are not the caller's tenant's. */
  private async jobs(id: string, who: Principal): Promise<JobRecord[]> {
    if (!id) throw invalid('id', 'missing');
    if (!isPipelineId(id)) throw notFound(`pipeline ${id.slice(0, 64)}`);
    const records = await this.read(id);
    if (records.length === 0 || !canSee(who, records[0]!.job.spec.tenant)) throw notFound(`pipeline ${id}`);
    return records;
  }

  /** The pipeline's stored jobs, in submission order, whoever's they are. */
  private async read(id: string): Promise<JobRecord[]> {
    const ids = await this.d.repo.pipelineJobIds(id, PIPELINE_LIMIT);
    const records: JobRecord[] = [];
    for (let i = 0; i < ids.length; i += READ_CONCURRENCY) {
      const read = await Promise.all(ids.slice(i, i + READ_CONCURRENCY).map((j) => this.d.repo.get(j)));
      for (const v of read) if (v) records.push(v.record);
    }
    return records;
  }
}
