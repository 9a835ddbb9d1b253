/**
 * JobService: submit, read, cancel, watch and stream logs. A thin translator
 * between gRPC and the job lifecycle; validation names the offending field.
 */
import { status as Status, type Server, type ServerWritableStream } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  JobServiceService,
  type CancelRequest,
  type CancelResponse,
  type GetRequest,
  type GetResponse,
  type Job,
  type ListRequest,
  type ListResponse,
  type LogsRequest,
  type LogsResponse,
  type SubmitBatchRequest,
  type SubmitBatchResponse,
  type SubmitRequest,
  type SubmitResponse,
  type WatchRequest,
  type WatchResponse,
} from '../../proto/gen/runmesh/v1/job.js';
import { requestCancel } from '../jobs/lifecycle.js';
import type { JobRecord } from '../jobs/record.js';
import type { Created, JobRepo } from '../jobs/repo.js';
import type { JobTracker } from '../jobs/tracker.js';
import type { JobWriter } from '../jobs/writer.js';
import { validateSpec } from '../jobs/validate.js';
import type { LogStore } from '../logs/log-store.js';
import { checkJobId, invalid, jobNotFound, toServiceError, unary, type Retention } from './status.js';
import { drained } from './drain.js';
import { followLogs, type LogLocator } from './logs-follow.js';

export interface JobServiceDeps {
  repo: JobRepo;
  tracker: JobTracker;
  writer: JobWriter;
  logs: LogStore;
  logger: Logger;
  /** Tells the agent running `jobId` to cancel; false when it is not connected here. */
  cancelOnAgent(agent: string, jobId: string, attempt: number, graceSeconds: number, reason: string): Promise<boolean>;
  /** The scheduler's latest reason a queued job waits, if it has one. */
  waitingReason(jobId: string): string | undefined;
  /** Where each attempt's log is, this peer or others. */
  logLocator: LogLocator;
  /** How long and how many ended jobs are kept: a missing job that may have been deleted says so. */
  retention: Retention;
  /**
   * The one way a new job is stored: drafted records are placed at once where
   * the scheduler can, else stored queued; a record with an idempotency key
   * already used resolves to the first job (`existing`). Resolves when all are durable.
   */
  admit(records: JobRecord[]): Promise<Created[]>;
}

const MAX_BATCH = 10_000;
const MAX_PAGE = 1000;
/** A watcher this far behind is cut off rather than buffering without bound. */
const WATCH_BUFFER_LIMIT = 10_000;

export class JobServiceImpl {
  constructor(private readonly d: JobServiceDeps) {}

  addToServer(server: Server): void {
    const log = this.d.logger;
    server.addService(JobServiceService, {
      submit: unary(log, (req: SubmitRequest) => this.submit(req)),
      submitBatch: unary(log, (req: SubmitBatchRequest) => this.submitBatch(req)),
      get: unary(log, (req: GetRequest) => this.get(req)),
      list: unary(log, (req: ListRequest) => this.list(req)),
      cancel: unary(log, (req: CancelRequest) => this.cancel(req)),
      watch: (call: ServerWritableStream<WatchRequest, WatchResponse>) => this.watch(call),
      logs: (call: ServerWritableStream<LogsRequest, LogsResponse>) => void this.logs(call),
    });
  }

  private view(r: JobRecord): Job {
    const reason = this.d.waitingReason(r.job.id);
    return reason && !r.job.waitingReason.startsWith('unschedulable') ? { ...r.job, waitingReason: reason } : r.job;
  }

  async submit(req: SubmitRequest): Promise<SubmitResponse> {
    const spec = validateSpec(req.spec);
    const [created] = await this.d.admit([this.d.repo.draft(spec, new Date())]);
    const { record, existing } = created!;
    if (!existing) this.d.logger.info({ job_id: record.job.id, name: spec.name }, 'job submitted');
    return { job: record.job, existing };
  }

  async submitBatch(req: SubmitBatchRequest): Promise<SubmitBatchResponse> {
    if (req.specs.length === 0) throw invalid('specs', 'empty batch');
    if (req.specs.length > MAX_BATCH) throw invalid('specs', `${req.specs.length} jobs exceed the batch limit of ${MAX_BATCH}`);
    const specs = req.specs.map((s, i) => validateSpec(s, `specs[${i}]`));
    const keyed = specs.findIndex((s) => s.idempotencyKey);
    if (keyed >= 0) throw invalid(`specs[${keyed}].idempotency_key`, 'not supported in SubmitBatch; use Submit');
    const now = new Date();
    const created = await this.d.admit(specs.map((s) => this.d.repo.draft(s, now)));
    return { jobs: created.map((v) => v.record.job) };
  }

  async get(req: GetRequest): Promise<GetResponse> {
    const v = await this.d.repo.get(checkJobId(req.id));
    if (!v) throw jobNotFound(req.id, this.d.retention);
    return { job: this.view(v.record) };
  }

  async list(req: ListRequest): Promise<ListResponse> {
    if (req.pageSize > MAX_PAGE) throw invalid('page_size', `${req.pageSize} exceeds the limit of ${MAX_PAGE}`);
    if (req.pageToken) checkJobId(req.pageToken, 'page_token');
    const page = await this.d.repo.list(
      { states: req.states, namePrefix: req.namePrefix, tenant: req.tenant },
      req.pageSize || 100,
      req.pageToken,
    );
    return { jobs: page.records.map((r) => this.view(r)), nextPageToken: page.next };
  }

  async cancel(req: CancelRequest): Promise<CancelResponse> {
    const id = checkJobId(req.id);
    let outcome = 'noop' as ReturnType<typeof requestCancel>;
    const now = new Date();
    const stored = await this.d.writer.write(id, (r) => (outcome = requestCancel(r, req.reason, now)) !== 'noop');
    const v = stored ?? (await this.d.repo.get(id))?.record;
    if (!v) throw jobNotFound(id, this.d.retention);
    const agent = v.job.attempts.at(-1)?.agent;
    if (outcome === 'agent' && agent) {
      await this.d
        .cancelOnAgent(agent, id, v.job.attempt, v.job.spec.cancelGraceSeconds, v.cancel?.reason ?? 'cancelled')
        .catch(() => false);
    }
    this.d.logger.info({ job_id: id, outcome, reason: req.reason }, 'job cancel requested');
    return { job: v.job };
  }

  private watch(call: ServerWritableStream<WatchRequest, WatchResponse>): void {
    const ids = new Set(call.request.ids);
    const unsubscribe = this.d.tracker.subscribe((v) => {
      if (ids.size > 0 && !ids.has(v.record.job.id)) return;
      if (call.writableLength > WATCH_BUFFER_LIMIT) {
        stop();
        call.emit('error', { code: Status.RESOURCE_EXHAUSTED, details: 'watcher too slow; re-read with List and watch again' });
        return;
      }
      call.write({ job: v.record.job, entry: v.record.job.timeline.at(-1) });
    });
    const stop = (): void => void unsubscribe();
    call.on('cancelled', stop);
    call.on('close', stop);
    call.on('error', stop);
  }

  private async logs(call: ServerWritableStream<LogsRequest, LogsResponse>): Promise<void> {
    const abort = new AbortController();
    call.on('cancelled', () => abort.abort(new Error('client went away')));
    call.on('close', () => abort.abort(new Error('stream closed')));
    try {
      const id = checkJobId(call.request.id);
      await followLogs({
        ...this.d,
        locator: this.d.logLocator,
        id,
        request: call.request,
        signal: abort.signal,
        write: (m) => call.write(m),
        drained: () => drained(call, abort.signal),
      });
      call.end();
    } catch (err) {
      if (!abort.signal.aborted) call.emit('error', toServiceError(err, this.d.logger));
    }
  }
}
