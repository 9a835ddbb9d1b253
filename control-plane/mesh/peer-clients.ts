/**
 * PeerService, the client side: one lazily created client per peer address,
 * promise helpers for the unary calls (each with a deadline, so a hung peer
 * costs at most that), and the log read as an async iterable. Failures come
 * back as `PeerCallError` carrying the gRPC code; whether to retry, and
 * where, is the caller's decision (the leader re-places, a reader tries the
 * log's second copy). Every call carries the cluster's peer token
 * (`peer-secret.ts`): PeerService refuses any call without it.
 */
import {
  credentials as grpcCredentials,
  Metadata,
  status as Status,
  type ChannelCredentials,
  type ClientReadableStream,
  type ServiceError,
} from '@grpc/grpc-js';
import pino, { type Logger } from 'pino';
import type { Assign, Cancel, Drain } from '../../proto/gen/runmesh/v1/agent.js';
import type { ArtifactFile } from '../../proto/gen/runmesh/v1/artifact.js';
import {
  PeerServiceClient,
  type CopyArtifactsRequest,
  type CopyLogRequest,
  type ListHeldArtifactsRequest,
  type ReadArtifactRequest,
  type ReadLogRequest,
} from '../../proto/gen/runmesh/v1/peer.js';
import { CLIENT_FLOW_CONTROL_OPTIONS } from '../../transport/index.js';
import { MeshClosedError, PeerCallError } from './errors.js';
import { PEER_METADATA_KEY, type PeerSecret } from './peer-secret.js';
import type { LogRecord } from '../logs/log-store.js';

export interface PeerClientsOptions {
  /** The cluster's peer secret; its token goes with every call. */
  secret: PeerSecret;
  /** Channel credentials for peer connections (default: plaintext). */
  credentials?: ChannelCredentials;
  /** Deadline of each unary call (default 2 s). */
  unaryTimeoutMs?: number;
  logger?: Logger;
}

export const DEFAULT_PEER_UNARY_TIMEOUT_MS = 2_000;

type Callback<T> = (err: ServiceError | null, res: T) => void;

export class PeerClients {
  private readonly clients = new Map<string, PeerServiceClient>();
  private readonly credentials: ChannelCredentials;
  private readonly unaryTimeoutMs: number;
  private readonly log: Logger;
  private readonly secret: PeerSecret;
  private closed = false;

  constructor(options: PeerClientsOptions) {
    this.secret = options.secret;
    this.credentials = options.credentials ?? grpcCredentials.createInsecure();
    this.unaryTimeoutMs = options.unaryTimeoutMs ?? DEFAULT_PEER_UNARY_TIMEOUT_MS;
    this.log = (options.logger ?? pino({ level: 'silent' })).child({ component: 'peer-clients' });
  }

  /** Asks the peer at `address` to send `assign` to `agent`; false when the agent is not connected there. */
  deliverAssign(address: string, agent: string, assign: Assign): Promise<boolean> {
    return this.unary<{ delivered: boolean }>(address, 'DeliverAssign', (c, md, opts, cb) =>
      c.deliverAssign({ agent, assign }, md, opts, cb),
    ).then((r) => r.delivered);
  }

  deliverCancel(address: string, agent: string, cancel: Cancel): Promise<boolean> {
    return this.unary<{ delivered: boolean }>(address, 'DeliverCancel', (c, md, opts, cb) =>
      c.deliverCancel({ agent, cancel }, md, opts, cb),
    ).then((r) => r.delivered);
  }

  deliverDrain(address: string, agent: string, drain: Drain): Promise<boolean> {
    return this.unary<{ delivered: boolean }>(address, 'DeliverDrain', (c, md, opts, cb) =>
      c.deliverDrain({ agent, drain }, md, opts, cb),
    ).then((r) => r.delivered);
  }

  /**
   * Asks the peer at `address` to keep a copy of the sealed log `sourcePeer`
   * holds; resolves with the records it holds. The deadline grows with the
   * log (the peer reads all of it), from the unary deadline up.
   */
  copyLog(address: string, request: CopyLogRequest, timeoutMs: number): Promise<number> {
    return this.unary<{ records: number }>(address, 'CopyLog', (c, md, opts, cb) => c.copyLog(request, md, opts, cb), timeoutMs).then(
      (r) => r.records,
    );
  }

  /**
   * Reads a log held by the peer at `address`. No deadline (a followed log
   * streams as long as the job runs): stop it with `signal`, or by leaving the
   * loop. Ends with the abort reason when `signal` aborts.
   */
  async *readLog(address: string, request: ReadLogRequest, signal?: AbortSignal): AsyncGenerator<LogRecord> {
    type Msg = { seq: number; stream: LogRecord['stream']; data: Uint8Array };
    for await (const r of this.stream<Msg>(address, 'ReadLog', (c, md) => c.readLog(request, md), signal))
      yield { seq: r.seq, stream: r.stream, data: r.data };
  }

  /** The stored artifacts of an attempt that the peer at `address` holds (NOT_FOUND when none). */
  listHeldArtifacts(address: string, request: ListHeldArtifactsRequest): Promise<ArtifactFile[]> {
    return this.unary<{ files: ArtifactFile[] }>(address, 'ListHeldArtifacts', (c, md, opts, cb) =>
      c.listHeldArtifacts(request, md, opts, cb),
    ).then((r) => r.files);
  }

  /** Asks the peer at `address` to keep a copy of the stored artifacts `sourcePeer` holds; resolves with the files it holds. */
  copyArtifacts(address: string, request: CopyArtifactsRequest, timeoutMs: number): Promise<number> {
    return this.unary<{ files: number }>(
      address,
      'CopyArtifacts',
      (c, md, opts, cb) => c.copyArtifacts(request, md, opts, cb),
      timeoutMs,
    ).then((r) => r.files);
  }

  /** Reads a stored artifact file from the peer at `address`, from `request.offset`; stop it with `signal` or by leaving the loop. */
  async *readArtifact(address: string, request: ReadArtifactRequest, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
    for await (const m of this.stream<{ data: Uint8Array }>(address, 'ReadArtifact', (c, md) => c.readArtifact(request, md), signal))
      yield m.data;
  }

  /** A server stream's messages; ends with the abort reason when `signal` aborts, and stops the peer's side when the consumer leaves early. */
  private async *stream<T>(
    address: string,
    method: string,
    open: (client: PeerServiceClient, md: Metadata) => ClientReadableStream<unknown>,
    signal?: AbortSignal,
  ): AsyncGenerator<T> {
    signal?.throwIfAborted();
    const call = open(this.client(address), this.metadata());
    const onAbort = (): void => call.cancel();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for await (const msg of call) yield msg as T;
      signal?.throwIfAborted();
    } catch (err) {
      signal?.throwIfAborted();
      throw wrap(err, address, method);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      // The consumer may have left the loop early; the peer can stop reading then.
      call.cancel();
    }
  }

  /** Drops the clients of every address not in `live` (peers that left the mesh). */
  retain(live: ReadonlySet<string>): void {
    for (const address of [...this.clients.keys()]) if (!live.has(address)) this.forget(address);
  }

  /** Drops the client of a peer that left the mesh. */
  forget(address: string): void {
    const client = this.clients.get(address);
    this.clients.delete(address);
    client?.close();
  }

  /** Closes every client; calls after this fail with MeshClosedError. Idempotent. */
  close(): void {
    this.closed = true;
    for (const address of [...this.clients.keys()]) this.forget(address);
  }

  private client(address: string): PeerServiceClient {
    if (this.closed) throw new MeshClosedError('peer clients closed');
    let client = this.clients.get(address);
    if (!client) {
      client = new PeerServiceClient(address, this.credentials, CLIENT_FLOW_CONTROL_OPTIONS); // logs are read and copied between peers
      this.clients.set(address, client);
      this.log.debug({ address }, 'peer client created');
    }
    return client;
  }

  private metadata(): Metadata {
    const md = new Metadata();
    md.set(PEER_METADATA_KEY, this.secret.token());
    return md;
  }

  private unary<T>(
    address: string,
    method: string,
    invoke: (client: PeerServiceClient, md: Metadata, opts: { deadline: number }, cb: Callback<T>) => void,
    timeoutMs = this.unaryTimeoutMs,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const client = this.client(address);
      invoke(client, this.metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => {
        if (err) reject(wrap(err, address, method));
        else resolve(res);
      });
    });
  }
}

function wrap(err: unknown, address: string, method: string): PeerCallError {
  const code = typeof (err as Partial<ServiceError>).code === 'number' ? (err as ServiceError).code : Status.UNKNOWN;
  return new PeerCallError(address, method, code, { cause: err });
}
