/**
 * PeerService, the server side: what one control-plane peer asks of another.
 * The leader delivers Assign/Cancel/Drain to the peer holding the agent's
 * stream; any peer reads a log that another peer holds. A thin translator
 * around `PeerHandler`, which the control plane puts together from its
 * gateway, its log store and the mesh's log copies (see server.ts). Every
 * call passes `guardPeerCalls` first (peer-auth.ts): peers only.
 */
import type { Server, ServerWritableStream } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Assign, Cancel, Drain } from '../../proto/gen/runmesh/v1/agent.js';
import {
  PeerServiceService,
  type CopyLogRequest,
  type CopyLogResponse,
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
import { drained } from './drain.js';
import { guardPeerCalls, type PeerVerifier } from './peer-auth.js';
import { checkJobId, invalid, toServiceError, unary } from './status.js';

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
}

function required<T>(value: T | undefined, field: string): T {
  if (value === undefined) throw invalid(field, 'missing');
  return value;
}

function agentName(name: string): string {
  if (!name) throw invalid('agent', 'missing');
  return name;
}
