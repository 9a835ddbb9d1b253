/**
 * JobService: submit, read, cancel, watch and stream logs. A thin translator
 * between gRPC and the job lifecycle; validation names the offending field.
 */
import { status as Status, type Metadata, type Server, type ServerWritableStream } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  JobServiceService,
  type CancelRequest,
  type CancelResponse,
  type GetRequest,
  type GetResponse,
  type Job,
  type JobSpec,
  type ListRequest,
  type ListResponse,
  type RetryRequest,
  type RetryResponse,
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
import type { JobRecord, ResolvedSpec } from '../jobs/record.js';
import type { Created, JobRepo, ListFilter } from '../jobs/repo.js';
import { parseLabelFilter, type LabelFilter } from '../jobs/list-filter.js';
import type { JobTracker } from '../jobs/tracker.js';
import type { JobWriter } from '../jobs/writer.js';
import { validateSpec } from '../jobs/validate.js';
import { makePipeline, pipelinePlan } from '../pipelines/submit.js';
import type { LogStore } from '../logs/log-store.js';
import { canSee, canSeeJob, tenantFor, type Gate, type Principal } from '../auth/index.js';
import { auditedUnary, guardedStream, guardedUnary } from './guard.js';
import type { SecretStore } from '../secrets/index.js';
import { checkSecretRefs } from './secret-refs.js';
import { checkJobId, invalid, jobNotFound, toServiceError, type Retention } from './status.js';
import { drained } from './drain.js';
import { followLogs, type LogLocator } from './logs-follow.js';
import { traceContextInMetadata, type TraceContext } from '../../transport/tracing/carrier.js';
import { ATTR, checkTraceContext, SpanKind, TRACING_OFF, type TracedSpan, type Tracing } from '../../transport/tracing/tracing.js';
import { qosName } from '../scheduler/convert.js';
import { retryJob } from './job-retry.js';

export interface JobServiceDeps {
  /** Who may call what (the authorization table); tenants are checked here, per job. */
  gate: Gate;
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
  /** Where submit checks that a job's secret references exist in its tenant. */
  secrets: SecretStore;
  /** Submit's span, and the trace context each new job is stored with (docs/architecture.md, "Tracing"). Default: off. */
  tracing?: Tracing;
}

const MAX_BATCH = 10_000;
const MAX_PAGE = 1000;
/** Longest ListRequest.labels accepted. */
const MAX_LABELS_CHARS = 1024;

/** A List request's filters, checked: a bad `labels` or time is INVALID_ARGUMENT naming the field. */
function listFilter(req: ListRequest, who: Principal): ListFilter {
  if (req.labels.length > MAX_LABELS_CHARS) throw invalid('labels', `longer than ${MAX_LABELS_CHARS} characters`);
  let labels: LabelFilter = [];
  try {
    labels = parseLabelFilter(req.labels);
  } catch (err) {
    throw invalid('labels', (err as Error).message);
  }
  return {
    states: req.states,
    namePrefix: req.namePrefix,
    // Another tenant's jobs are not there for this caller: asking for that tenant lists nothing.
    tenant: (t) => (!req.tenant || t === req.tenant) && canSee(who, t),
    labels,
    createdAfter: listTime(req.createdAfter, 'created_after'),
    createdBefore: listTime(req.createdBefore, 'created_before'),
    oldestFirst: req.oldestFirst,
  };
}

function listTime(at: string | undefined, field: string): number | undefined {
  if (at === undefined) return undefined;
  const ms = Date.parse(at);
  if (Number.isNaN(ms)) throw invalid(field, `not a time: ${at.slice(0, 40)}`);
  return ms;
}
/** A watcher this far behind is cut off rather than buffering without bound. */
const WATCH_BUFFER_LIMIT = 10_000;

export class JobServiceImpl {
  constructor(private readonly d: JobServiceDeps) {}

  addToServer(server: Server): void {
    const log = this.d.logger;
    const { gate } = this.d;
    server.addService(JobServiceService, {
      submit: auditedUnary(
        gate,
        'JobService.Submit',
        log,
        (req: SubmitRequest, who, md) => this.traced('JobService.Submit', md, (span) => this.submit(req, who, span)),
        (_req, res: SubmitResponse | undefined) => res?.job?.id ?? '',
      ),
      // One entry for the batch, with its size (the job ids are in the answer).
      submitBatch: auditedUnary(
        gate,
        'JobService.SubmitBatch',
        log,
        (req: SubmitBatchRequest, who, md) => this.traced('JobService.SubmitBatch', md, (span) => this.submitBatch(req, who, span)),
        (req, res: SubmitBatchResponse | undefined) => `${res?.jobs.length ?? req.specs.length} jobs`,
      ),
      get: guardedUnary(gate, 'JobService.Get', log, (req: GetRequest, who) => this.get(req, who)),
      list: guardedUnary(gate, 'JobService.List', log, (req: ListRequest, who) => this.list(req, who)),
      cancel: auditedUnary(
        gate,
        'JobService.Cancel',
        log,
        (req: CancelRequest, who) => this.cancel(req, who),
        (req) => req.id,
      ),
      retry: auditedUnary(
        gate,
        'JobService.Retry',
        log,
        (req: RetryRequest, who) => this.retry(req, who),
        (req) => req.id,
      ),
      watch: guardedStream(gate, 'JobService.Watch', log, (call: ServerWritableStream<WatchRequest, WatchResponse>, who) =>
        this.watch(call, who),
      ),
      logs: guardedStream(
        gate,
        'JobService.Logs',
        log,
        (call: ServerWritableStream<LogsRequest, LogsResponse>, who) => void this.logs(call, who),
      ),
    });
  }

  private view(r: JobRecord): Job {
    const reason = this.d.waitingReason(r.job.id);
    return reason && !r.job.waitingReason.startsWith('unschedulable') ? { ...r.job, waitingReason: reason } : r.job;
  }

  /** The spec with its tenant chosen from the caller's (never on trust from the spec), then validated and resolved. */
  private resolve(spec: JobSpec | undefined, who: Principal, field: string): ResolvedSpec {
    if (!spec) return validateSpec(spec, field);
    const tenant = tenantFor(who, spec.tenant, `${field}.tenant`);
    if (typeof tenant !== 'string') throw invalid(`${field}.tenant`, tenant.pick);
    return validateSpec({ ...spec, tenant }, field);
  }

  /** The stored job `id`, if the caller may see it; a job of another tenant is as absent as an unknown one. */
  private async visible(id: string, who: Principal): Promise<JobRecord> {
    const v = await this.d.repo.get(checkJobId(id));
    if (!v || !canSeeJob(who, v.record.job.spec.tenant, v.record.job.id)) throw jobNotFound(id, this.d.retention);
    return v.record;
  }

  /**
   * Runs a submit under its span, a child of the caller's `traceparent` (a
   * malformed one is ignored: a new trace starts). Each job is stored with the
   * span's context, or with the caller's as sent when tracing is off.
   */
  private async traced<T>(name: string, md: Metadata, submit: (span: TracedSpan) => Promise<T>): Promise<T> {
    const span = (this.d.tracing ?? TRACING_OFF).start(name, checkTraceContext(traceContextInMetadata(md)), { kind: SpanKind.SERVER });
    try {
      const res = await submit(span);
      span.end('stored');
      return res;
    } catch (err) {
      span.end('refused', (err as Error).message);
      throw err;
    }
  }

  async submit(req: SubmitRequest, who: Principal, span?: TracedSpan): Promise<SubmitResponse> {
    const spec = this.resolve(req.spec, who, 'spec');
    if (spec.needs.length > 0) throw invalid('spec.needs', 'needs name jobs of the same batch: submit them together (SubmitBatch)');
    this.d.gate.spendTenant(spec.tenant, 1);
    await checkSecretRefs(this.d.secrets, spec, 'spec');
    const [created] = await this.d.admit([withTrace(this.d.repo.draft(spec, new Date()), span?.context)]);
    const { record, existing } = created!;
    span?.set({ [ATTR.job]: record.job.id, [ATTR.tenant]: spec.tenant, [ATTR.qos]: qosName(spec.qos), 'runmesh.existing': existing });
    if (!existing) this.d.logger.info({ job_id: record.job.id, name: spec.name, tenant: spec.tenant, token_id: who.id }, 'job submitted');
    return { job: record.job, existing };
  }

  async submitBatch(req: SubmitBatchRequest, who: Principal, span?: TracedSpan): Promise<SubmitBatchResponse> {
    if (req.specs.length === 0) throw invalid('specs', 'empty batch');
    if (req.specs.length > MAX_BATCH) throw invalid('specs', `${req.specs.length} jobs exceed the batch limit of ${MAX_BATCH}`);
    const specs = req.specs.map((s, i) => this.resolve(s, who, `specs[${i}]`));
    const plan = pipelinePlan(specs, req.pipeline === true);
    const perTenant = new Map<string, number>();
    for (const s of specs) perTenant.set(s.tenant, (perTenant.get(s.tenant) ?? 0) + 1);
    for (const [tenant, n] of perTenant) this.d.gate.spendTenant(tenant, n);
    for (const [i, s] of specs.entries()) await checkSecretRefs(this.d.secrets, s, `specs[${i}]`);
    const keyed = specs.findIndex((s) => s.idempotencyKey);
    if (keyed >= 0) throw invalid(`specs[${keyed}].idempotency_key`, 'not supported in SubmitBatch; use Submit');
    const now = new Date();
    const drafts = specs.map((s) => withTrace(this.d.repo.draft(s, now), span?.context));
    span?.set({ 'runmesh.jobs': drafts.length });
    if (plan) {
      const pipeline = makePipeline(drafts, plan, now);
      this.d.logger.info({ pipeline_id: pipeline, jobs: drafts.length, tenant: specs[0]!.tenant, token_id: who.id }, 'pipeline submitted');
    }
    const created = await this.d.admit(drafts);
    return { jobs: created.map((v) => v.record.job) };
  }

  /** Re-drives a job that ended without succeeding (job-retry.ts); the console's Retry too. */
  async retry(req: RetryRequest, who: Principal): Promise<RetryResponse> {
    return retryJob(this.d, req, who);
  }

  async get(req: GetRequest, who: Principal): Promise<GetResponse> {
    return { job: this.view(await this.visible(req.id, who)) };
  }

  async list(req: ListRequest, who: Principal): Promise<ListResponse> {
    if (req.pageSize > MAX_PAGE) throw invalid('page_size', `${req.pageSize} exceeds the limit of ${MAX_PAGE}`);
    if (req.pageToken) checkJobId(req.pageToken, 'page_token');
    const page = await this.d.repo.list(listFilter(req, who), req.pageSize || 100, req.pageToken);
    // Annotations (up to ~20 KiB a job) are left to Get and Watch: a page of a thousand jobs stays small.
    return { jobs: page.records.map((r) => ({ ...this.view(r), annotations: [] })), nextPageToken: page.next };
  }

  async cancel(req: CancelRequest, who: Principal): Promise<CancelResponse> {
    const id = checkJobId(req.id);
    let outcome = 'noop' as ReturnType<typeof requestCancel>;
    const now = new Date();
    const stored = await this.d.writer.write(
      id,
      (r) => canSee(who, r.job.spec.tenant) && (outcome = requestCancel(r, req.reason, now)) !== 'noop',
    );
    const v = stored ?? (await this.visible(id, who));
    const agent = v.job.attempts.at(-1)?.agent;
    if (outcome === 'agent' && agent) {
      await this.d
        .cancelOnAgent(agent, id, v.job.attempt, v.job.spec.cancelGraceSeconds, v.cancel?.reason ?? 'cancelled')
        .catch(() => false);
    }
    this.d.logger.info({ job_id: id, outcome, reason: req.reason, token_id: who.id }, 'job cancel requested');
    return { job: v.job };
  }

  private watch(call: ServerWritableStream<WatchRequest, WatchResponse>, who: Principal): void {
    const ids = new Set(call.request.ids);
    const unsubscribe = this.d.tracker.subscribe((v) => {
      if (ids.size > 0 && !ids.has(v.record.job.id)) return;
      if (!canSee(who, v.record.job.spec.tenant)) return;
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

  private async logs(call: ServerWritableStream<LogsRequest, LogsResponse>, who: Principal): Promise<void> {
    const abort = new AbortController();
    call.on('cancelled', () => abort.abort(new Error('client went away')));
    call.on('close', () => abort.abort(new Error('stream closed')));
    try {
      const id = (await this.visible(call.request.id, who)).job.id;
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

/** `r` carrying `tc` as its trace context (one job's Submit span, or the submitter's traceparent). */
function withTrace(r: JobRecord, tc: TraceContext | undefined): JobRecord {
  if (!tc) return r;
  r.job.traceParent = tc.traceparent;
  if (tc.tracestate) r.traceState = tc.tracestate;
  return r;
}
