/**
 * AgentService's artifact calls (BeginArtifacts, UploadArtifact,
 * CommitArtifacts): an agent stores the artifacts of an attempt it holds,
 * after the attempt exited and before its JobResult. Each call is the
 * agent's own: admission checked its credential (metadata) before reading a
 * byte of the request, and each handler checks it again, with the attempt:
 * the job's current one, assigned to this agent and not ended. So an agent
 * can store artifacts for nothing but the attempts it runs, and a zombie
 * attempt (re-assigned elsewhere meanwhile) stores nothing.
 *
 * The commit copies the artifacts to a second peer, then records them in the
 * job's attempt (files, bytes) and where they are (JobRecord.artifactPeers),
 * in one write fenced by the same ownership.
 */
import {
  status as Status,
  type Metadata,
  type sendUnaryData,
  type ServerReadableStream,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type {
  BeginArtifactsRequest,
  BeginArtifactsResponse,
  CommitArtifactsRequest,
  CommitArtifactsResponse,
  UploadArtifactRequest,
  UploadArtifactResponse,
} from '../../proto/gen/runmesh/v1/agent.js';
import type { ArtifactFile } from '../../proto/gen/runmesh/v1/artifact.js';
import { AGENT_NAME_HEADER } from '../../proto/protocol.js';
import type { ArtifactKey, ArtifactLimits, ArtifactStorage } from '../artifacts/storage.js';
import type { AgentAuth } from '../gateway/auth.js';
import { activeAgent } from '../jobs/lifecycle.js';
import type { JobTracker } from '../jobs/tracker.js';
import type { JobWriter } from '../jobs/writer.js';
import { ApiError, checkJobId, invalid, toServiceError, unary } from './status.js';

export interface ArtifactUploadDeps {
  auth: Pick<AgentAuth, 'check'>;
  tracker: JobTracker;
  writer: JobWriter;
  storage: ArtifactStorage;
  /** Copies stored artifacts to a second peer; resolves with the holders, this peer first. */
  replicate(key: ArtifactKey, files: readonly ArtifactFile[]): Promise<string[]>;
  /** This peer's limits (--artifact-max-file, --artifact-max-job, --artifact-max-files). */
  limits: ArtifactLimits;
  /** Told of each commit (the peer's /metrics). */
  onStored?: (files: number, bytes: number) => void;
  logger: Logger;
}

const BEARER = /^Bearer (rma_[A-Za-z0-9_-]{43})$/;

/**
 * The agent a call's metadata names, once its credential checks out
 * (UNAUTHENTICATED otherwise, never saying which part was wrong). Admission
 * calls this before the request is read; the handlers again, for the name.
 */
export async function agentOfCall(auth: Pick<AgentAuth, 'check'>, metadata: Metadata): Promise<string> {
  const name = String(metadata.get(AGENT_NAME_HEADER)[0] ?? '');
  const bearer = BEARER.exec(String(metadata.get('authorization')[0] ?? ''));
  if (!name || !bearer)
    throw new ApiError(
      Status.UNAUTHENTICATED,
      `an agent call needs ${AGENT_NAME_HEADER} and its credential (authorization: Bearer rma_...)`,
    );
  const admitted = await auth.check(name, '', bearer[1]!);
  if (admitted.kind !== 'credential') throw new ApiError(Status.UNAUTHENTICATED, `credential refused for agent ${name.slice(0, 64)}`);
  return name;
}

export class ArtifactUploads {
  constructor(private readonly d: ArtifactUploadDeps) {}

  /** The three methods, for AgentService's implementation beside Connect. */
  handlers(): UntypedServiceImplementation {
    const log = this.d.logger;
    return {
      beginArtifacts: unary(log, (req: BeginArtifactsRequest, call) => this.begin(req, call.metadata)),
      uploadArtifact: (
        call: ServerReadableStream<UploadArtifactRequest, UploadArtifactResponse>,
        done: sendUnaryData<UploadArtifactResponse>,
      ) =>
        void this.upload(call).then(
          (res) => done(null, res),
          (err: unknown) => done(toServiceError(err, log)),
        ),
      commitArtifacts: unary(log, (req: CommitArtifactsRequest, call) => this.commit(req, call.metadata)),
    };
  }

  private async begin(req: BeginArtifactsRequest, metadata: Metadata): Promise<BeginArtifactsResponse> {
    const { key } = await this.owned(req, metadata);
    if (req.files.length === 0) throw invalid('files', 'an upload has at least one file');
    const state = await this.d.storage.begin(key, req.files, this.d.limits);
    return { held: state.held.map(BigInt), committed: state.committed };
  }

  private async upload(call: ServerReadableStream<UploadArtifactRequest, UploadArtifactResponse>): Promise<UploadArtifactResponse> {
    const messages = call[Symbol.asyncIterator]() as AsyncIterator<UploadArtifactRequest>;
    const first = await messages.next();
    const header = !first.done && first.value.msg?.$case === 'header' ? first.value.msg.value : undefined;
    if (!header) throw invalid('header', 'the first message of an upload is its header');
    const { key, agent } = await this.owned(header, call.metadata);
    if (!header.path) throw invalid('header.path', 'missing');
    const data = async function* (): AsyncGenerator<Uint8Array> {
      for (let m = await messages.next(); !m.done; m = await messages.next()) {
        if (m.value.msg?.$case !== 'data') throw invalid('data', 'after the header, an upload sends only data');
        yield m.value.msg.value;
      }
    };
    const held = await this.d.storage.append(key, header.path, Number(header.offset), data());
    this.d.logger.debug({ job_id: key.jobId, attempt: key.attempt, agent_id: agent, path: header.path, held }, 'artifact bytes stored');
    return { held: BigInt(held) };
  }

  private async commit(req: CommitArtifactsRequest, metadata: Metadata): Promise<CommitArtifactsResponse> {
    const { key, agent } = await this.owned(req, metadata);
    const files = await this.d.storage.commit(key);
    const peers = await this.d.replicate(key, files);
    const bytes = files.reduce((n, f) => n + f.size, 0n);
    const stored = await this.d.writer.write(key.jobId, (r) => {
      const a = r.job.attempts.at(-1);
      if (r.job.attempt !== key.attempt || activeAgent(r) !== agent || !a) return false;
      a.artifacts = { files: files.length, bytes, error: '' };
      r.artifactPeers = { ...r.artifactPeers, [key.attempt]: peers };
      return true;
    });
    if (!stored) throw notOwned(key, agent);
    this.d.onStored?.(files.length, Number(bytes));
    this.d.logger.info(
      { job_id: key.jobId, attempt: key.attempt, agent_id: agent, files: files.length, bytes: Number(bytes), peers },
      'artifacts stored',
    );
    return { peers };
  }

  /** The call's agent and attempt, when that agent holds the attempt now (FAILED_PRECONDITION otherwise). */
  private async owned(req: { jobId: string; attempt: number }, metadata: Metadata): Promise<{ key: ArtifactKey; agent: string }> {
    const agent = await agentOfCall(this.d.auth, metadata);
    const key = { jobId: checkJobId(req.jobId, 'job_id'), attempt: req.attempt };
    if (key.attempt === 0) throw invalid('attempt', 'missing');
    const v = this.d.tracker.get(key.jobId);
    if (!v || v.record.job.attempt !== key.attempt || activeAgent(v.record) !== agent) throw notOwned(key, agent);
    return { key, agent };
  }
}

function notOwned(key: ArtifactKey, agent: string): ApiError {
  return new ApiError(
    Status.FAILED_PRECONDITION,
    `job ${key.jobId} attempt ${key.attempt} is not an attempt agent ${agent.slice(0, 64)} holds now: its artifacts are not taken`,
  );
}
