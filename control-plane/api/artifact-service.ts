/**
 * ArtifactService: the artifacts of a job, listed and read from whichever
 * peers hold them (mesh/artifact-copies.ts). Reading is `jobs.read` on the
 * job's tenant; a job token (`job.self`) reads its own job's, and, with
 * `from_need`, those of a job its own needs in its pipeline, and nothing
 * else: any other job is NOT_FOUND, as another tenant's is.
 *
 * A file is checked against its stored sha256 as it streams: a copy that
 * went bad on disk ends the stream with DATA_LOSS rather than pass as good.
 */
import { createHash } from 'node:crypto';
import { status as Status, type Server, type ServerWritableStream } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  ArtifactServiceService,
  type ArtifactFile,
  type GetArtifactRequest,
  type GetArtifactResponse,
  type ListArtifactsRequest,
  type ListArtifactsResponse,
} from '../../proto/gen/runmesh/v1/artifact.js';
import { canSeeJob, type Gate, type Principal } from '../auth/index.js';
import type { ArtifactKey } from '../artifacts/storage.js';
import type { JobRecord } from '../jobs/record.js';
import type { JobRepo } from '../jobs/repo.js';
import { drained } from './drain.js';
import { guardedStream, guardedUnary } from './guard.js';
import { ApiError, checkJobId, invalid, jobNotFound, toServiceError, type Retention } from './status.js';

/** Where stored artifacts are read (ArtifactCopies). */
export interface ArtifactSource {
  list(key: ArtifactKey, holders: readonly string[]): Promise<ArtifactFile[] | undefined>;
  read(key: ArtifactKey, holders: readonly string[], path: string, signal: AbortSignal): AsyncIterable<Uint8Array>;
}

export interface ArtifactServiceDeps {
  gate: Gate;
  repo: JobRepo;
  source: ArtifactSource;
  retention: Retention;
  logger: Logger;
}

/** The attempt a request names, resolved and checked against the caller. */
interface Located {
  record: JobRecord;
  /** 0 when no attempt of the job stored artifacts. */
  attempt: number;
  holders: string[];
}

export class ArtifactServiceImpl {
  constructor(private readonly d: ArtifactServiceDeps) {}

  addToServer(server: Server): void {
    const { gate, logger: log } = this.d;
    server.addService(ArtifactServiceService, {
      listArtifacts: guardedUnary(gate, 'ArtifactService.ListArtifacts', log, (req: ListArtifactsRequest, who) => this.list(req, who)),
      getArtifact: guardedStream(
        gate,
        'ArtifactService.GetArtifact',
        log,
        (call: ServerWritableStream<GetArtifactRequest, GetArtifactResponse>, who) => void this.get(call, who),
      ),
    });
  }

  /** The stored files of the attempt `req` names (the latest that stored some, by default). */
  async list(req: ListArtifactsRequest, who: Principal): Promise<ListArtifactsResponse> {
    const at = await this.locate(req, who);
    const error = at.record.job.attempts.find((a) => a.number === at.attempt)?.artifacts?.error ?? '';
    const files = at.holders.length > 0 ? ((await this.d.source.list(this.key(at), at.holders)) ?? []) : [];
    return { jobId: at.record.job.id, attempt: at.attempt, files, error };
  }

  /**
   * One stored file: what it is, and its bytes from the holders, checked
   * against its sha256 at the end (DATA_LOSS on a mismatch).
   */
  async read(
    req: GetArtifactRequest,
    who: Principal,
    signal: AbortSignal,
  ): Promise<{ file: ArtifactFile; body: AsyncIterable<Uint8Array> }> {
    if (!req.path) throw invalid('path', 'missing');
    const at = await this.locate(req, who);
    const files = at.holders.length > 0 ? ((await this.d.source.list(this.key(at), at.holders)) ?? []) : [];
    const file = files.find((f) => f.path === req.path);
    if (!file) throw new ApiError(Status.NOT_FOUND, `artifact ${req.path.slice(0, 256)} of job ${at.record.job.id} not found`);
    return { file, body: checked(file, this.d.source.read(this.key(at), at.holders, file.path, signal)) };
  }

  private async get(call: ServerWritableStream<GetArtifactRequest, GetArtifactResponse>, who: Principal): Promise<void> {
    const abort = new AbortController();
    call.on('cancelled', () => abort.abort(new Error('client went away')));
    call.on('close', () => abort.abort(new Error('stream closed')));
    try {
      const { file, body } = await this.read(call.request, who, abort.signal);
      call.write({ msg: { $case: 'file', value: file } });
      for await (const data of body) {
        if (abort.signal.aborted) return;
        if (!call.write({ msg: { $case: 'data', value: Buffer.from(data.buffer, data.byteOffset, data.byteLength) } }))
          await drained(call, abort.signal);
      }
      call.end();
    } catch (err) {
      if (!abort.signal.aborted) call.emit('error', toServiceError(err, this.d.logger));
    }
  }

  private key(at: Located): ArtifactKey {
    return { jobId: at.record.job.id, attempt: at.attempt };
  }

  /** The job and attempt a request names, when the caller may see them (NOT_FOUND as for an unknown job otherwise). */
  private async locate(req: { jobId: string; attempt: number; fromNeed: string }, who: Principal): Promise<Located> {
    const record = req.fromNeed ? await this.need(req, who) : await this.visible(checkJobId(req.jobId, 'job_id'), who);
    const attempts = record.job.attempts;
    const a = req.attempt ? attempts.find((x) => x.number === req.attempt) : attempts.findLast((x) => x.artifacts !== undefined);
    if (req.attempt && !a) throw new ApiError(Status.NOT_FOUND, `attempt ${req.attempt} of job ${record.job.id} not found`);
    const attempt = a?.artifacts ? a.number : 0;
    return { record, attempt, holders: attempt ? (record.artifactPeers?.[attempt] ?? []) : [] };
  }

  private async visible(id: string, who: Principal): Promise<JobRecord> {
    const v = await this.d.repo.get(id);
    if (!v || !canSeeJob(who, v.record.job.spec.tenant, v.record.job.id)) throw jobNotFound(id, this.d.retention);
    return v.record;
  }

  /** `from_need`: the job of that name among the needs of the caller's own job (a job token's). */
  private async need(req: { jobId: string; fromNeed: string }, who: Principal): Promise<JobRecord> {
    if (who.role !== 'job' || !who.job)
      throw invalid('from_need', 'only a job token (inside a pipeline job) names a need; give job_id instead');
    if (req.jobId && req.jobId !== who.job.id) throw invalid('job_id', 'give job_id or from_need, not both');
    const own = await this.visible(who.job.id, who);
    const i = own.job.spec.needs.indexOf(req.fromNeed);
    const id = i < 0 ? undefined : own.needs?.[i];
    if (!id)
      throw new ApiError(
        Status.NOT_FOUND,
        `need ${req.fromNeed.slice(0, 128)} of job ${own.job.id} not found (it needs ${own.job.spec.needs.join(', ') || 'nothing'})`,
      );
    const v = await this.d.repo.get(id);
    // The need was submitted with the job, in its tenant; a record that says otherwise is not shown.
    if (!v || v.record.job.spec.tenant !== own.job.spec.tenant) throw jobNotFound(id, this.d.retention);
    return v.record;
  }
}

/** Passes `body` on, and fails it with DATA_LOSS when its length or sha256 is not the file's. */
async function* checked(file: ArtifactFile, body: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const h = createHash('sha256');
  let n = 0n;
  for await (const chunk of body) {
    h.update(chunk);
    n += BigInt(chunk.byteLength);
    if (n > file.size) break;
    yield chunk;
  }
  if (n !== file.size || h.digest('hex') !== file.sha256)
    throw new ApiError(
      Status.DATA_LOSS,
      `artifact ${file.path}: the stored copy does not match its sha256 (${n} of ${file.size} bytes read)`,
    );
}
