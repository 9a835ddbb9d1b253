/**
 * PeerService, the server side: what one control-plane peer asks of another.
 * The leader delivers Assign/Cancel/Drain to the peer holding the agent's
 * stream; any peer reads a log that another peer holds. A thin translator
 * around `PeerHandler`, which the control plane puts together from its
 * gateway, its log store and the mesh's log copies (see server.ts). Every
 * call passes `guardPeerCalls` first (peer-auth.ts): peers only.
 */
import type { Server, ServerWritableStream } from '@grpc/grpc-js';
import type { ArtifactFile } from '../../proto/gen/runmesh/v1/artifact.js';
import type { Logger } from 'pino';
import type { Assign, Cancel, Drain } from '../../proto/gen/runmesh/v1/agent.js';
import {
  PeerServiceService,
  type CopyArtifactsRequest,
  type CopyArtifactsResponse,
  type CopyLogRequest,
  type CopyLogResponse,
  type ListHeldArtifactsRequest,
  type ListHeldArtifactsResponse,
  type ReadArtifactRequest,
  type ReadArtifactResponse,
  type DeliverAssignRequest,
  type DeliverAssignResponse,
  type DeliverCancelRequest,
  type DeliverCancelResponse,
  type DeliverDrainRequest,
  type DeliverDrainResponse,
  type ReadLogRequest,
  type ReadLogResponse,
} from '../../proto/gen/runmesh/v1/peer.js';
import type { LogRead, LogRecord } from '../logs/log-store.js';
import type { ArtifactKey } from '../artifacts/storage.js';
import { drained } from './drain.js';
import { guardPeerCalls, type PeerVerifier } from './peer-auth.js';
import { checkJobId, invalid, notFound, toServiceError, unary } from './status.js';

/** What a peer does for its peers. */
export interface PeerHandler {
  /** Sends `assign` on the stream of `agent`; false when that agent is not connected here. */
  deliverAssign(agent: string, assign: Assign): boolean;
  deliverCancel(agent: string, cancel: Cancel): boolean;
  deliverDrain(agent: string, drain: Drain): boolean;
  /**
   * The attempt's records from `fromSeq` on. With `follow`, keeps yielding as
   * records arrive and ends when the log is sealed. Ends early when `signal`
   * aborts (the reader went away).
   */
  readLog(read: LogRead, signal: AbortSignal): AsyncIterable<LogRecord>;
  /**
   * Keeps a durable copy of a sealed log that `sourcePeer` holds, fetching
   * the records not yet held here; resolves with how many are held.
   */
  copyLog(jobId: string, attempt: number, sourcePeer: string, records: number): Promise<number>;
  /** The stored artifacts of an attempt held here; undefined when none are. */
  listHeldArtifacts(key: ArtifactKey): Promise<ArtifactFile[] | undefined>;
  /** A stored artifact file held here, from `offset`. */
  readArtifact(key: ArtifactKey, path: string, offset: number, signal: AbortSignal): AsyncIterable<Uint8Array>;
  /** Keeps a durable copy of the artifacts `sourcePeer` stored; resolves with the files held. */
  copyArtifacts(key: ArtifactKey, sourcePeer: string): Promise<number>;
}

export class PeerServiceImpl {
  constructor(
    private readonly handler: PeerHandler,
    /** Recognises the cluster's peer token; every call without it is refused. */
    private readonly verifier: PeerVerifier,
    private readonly log: Logger,
  ) {}

  addToServer(server: Server): void {
    const log = this.log;
    const handlers = {
      deliverAssign: unary(log, async (req: DeliverAssignRequest): Promise<DeliverAssignResponse> => {
        const assign = required(req.assign, 'assign');
        return { delivered: this.handler.deliverAssign(agentName(req.agent), assign) };
      }),
      deliverCancel: unary(log, async (req: DeliverCancelRequest): Promise<DeliverCancelResponse> => {
        const cancel = required(req.cancel, 'cancel');
        return { delivered: this.handler.deliverCancel(agentName(req.agent), cancel) };
      }),
      deliverDrain: unary(log, async (req: DeliverDrainRequest): Promise<DeliverDrainResponse> => {
        const drain = required(req.drain, 'drain');
        return { delivered: this.handler.deliverDrain(agentName(req.agent), drain) };
      }),
      copyLog: unary(log, async (req: CopyLogRequest): Promise<CopyLogResponse> => {
        checkJobId(req.jobId, 'job_id');
        if (req.attempt === 0) throw invalid('attempt', 'missing');
        if (!req.sourcePeer) throw invalid('source_peer', 'missing');
        if (req.records === 0) throw invalid('records', 'a sealed log to copy has at least one record');
        return { records: await this.handler.copyLog(req.jobId, req.attempt, req.sourcePeer, req.records) };
      }),
      readLog: (call: ServerWritableStream<ReadLogRequest, ReadLogResponse>) => void this.readLog(call),
      listHeldArtifacts: unary(log, async (req: ListHeldArtifactsRequest): Promise<ListHeldArtifactsResponse> => {
        const key = artifactKey(req);
        const files = await this.handler.listHeldArtifacts(key);
        if (!files) throw notFound(`artifacts of job ${key.jobId} attempt ${key.attempt} on this peer`);
        return { files };
      }),
      copyArtifacts: unary(log, async (req: CopyArtifactsRequest): Promise<CopyArtifactsResponse> => {
        if (!req.sourcePeer) throw invalid('source_peer', 'missing');
        return { files: await this.handler.copyArtifacts(artifactKey(req), req.sourcePeer) };
      }),
      readArtifact: (call: ServerWritableStream<ReadArtifactRequest, ReadArtifactResponse>) => void this.readArtifact(call),
    };
    server.addService(PeerServiceService, guardPeerCalls(handlers, this.verifier));
  }

  private async readLog(call: ServerWritableStream<ReadLogRequest, ReadLogResponse>): Promise<void> {
    const abort = new AbortController();
    call.on('cancelled', () => abort.abort(new Error('reader went away')));
    call.on('close', () => abort.abort(new Error('stream closed')));
    try {
      const { jobId, attempt, fromSeq, follow } = call.request;
      checkJobId(jobId, 'job_id');
      if (attempt === 0) throw invalid('attempt', 'missing');
      for await (const r of this.handler.readLog({ jobId, attempt, fromSeq, follow }, abort.signal)) {
        if (abort.signal.aborted) break;
        if (!call.write({ seq: r.seq, stream: r.stream, data: Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength) })) {
          await drained(call, abort.signal);
        }
      }
      if (!abort.signal.aborted) call.end();
    } catch (err) {
      if (!abort.signal.aborted) call.emit('error', toServiceError(err, this.log));
    }
  }

  /** Streams a held artifact file, with backpressure; ends early when the reader goes away. */
  private async readArtifact(call: ServerWritableStream<ReadArtifactRequest, ReadArtifactResponse>): Promise<void> {
    const abort = new AbortController();
    call.on('cancelled', () => abort.abort(new Error('reader went away')));
    call.on('close', () => abort.abort(new Error('stream closed')));
    try {
      const key = artifactKey(call.request);
      if (!call.request.path) throw invalid('path', 'missing');
      for await (const data of this.handler.readArtifact(key, call.request.path, Number(call.request.offset), abort.signal)) {
        if (abort.signal.aborted) break;
        if (!call.write({ data: Buffer.from(data.buffer, data.byteOffset, data.byteLength) })) await drained(call, abort.signal);
      }
      if (!abort.signal.aborted) call.end();
    } catch (err) {
      if (!abort.signal.aborted) call.emit('error', toServiceError(err, this.log));
    }
  }
}

function artifactKey(req: { jobId: string; attempt: number }): ArtifactKey {
  checkJobId(req.jobId, 'job_id');
  if (req.attempt === 0) throw invalid('attempt', 'missing');
  return { jobId: req.jobId, attempt: req.attempt };
}

function required<T>(value: T | undefined, field: string): T {
  if (value === undefined) throw invalid(field, 'missing');
  return value;
}

function agentName(name: string): string {
  if (!name) throw invalid('agent', 'missing');
  return name;
}
