/**
 * The CLI's connection to a control plane: one channel shared by the job and
 * cluster clients, unary calls with a deadline, and gRPC failures turned into
 * {@link RpcError}s that carry the server address for the error message.
 */
import {
  credentials as grpcCredentials,
  type CallOptions,
  type ChannelCredentials,
  type ClientUnaryCall,
  InterceptingCall,
  type Interceptor,
  Metadata,
  type ServiceError,
} from '@grpc/grpc-js';
import { JobServiceClient } from '../proto/gen/runmesh/v1/job.js';
import { ClusterServiceClient } from '../proto/gen/runmesh/v1/cluster.js';
import { TokenServiceClient } from '../proto/gen/runmesh/v1/token.js';
import { AuditServiceClient } from '../proto/gen/runmesh/v1/audit.js';
import { SecretServiceClient } from '../proto/gen/runmesh/v1/secret.js';
import { PipelineServiceClient } from '../proto/gen/runmesh/v1/pipeline.js';
import { ScheduleServiceClient } from '../proto/gen/runmesh/v1/schedule.js';
import { HookServiceClient } from '../proto/gen/runmesh/v1/hook.js';
import { TemplateServiceClient } from '../proto/gen/runmesh/v1/template.js';
import { ArtifactServiceClient } from '../proto/gen/runmesh/v1/artifact.js';
import { readFileSync } from 'node:fs';
import { caFor, tokenFor } from './context.js';
import type { Target } from './options.js';
import { CLIENT_FLOW_CONTROL_OPTIONS } from '../transport/flow-control.js';
import { joinHostPort, parseAddress, type Target as Address } from '../transport/address.js';
import { RpcError, UsageError } from './errors.js';

/**
 * grpc-js backs reconnects off up to 2 minutes by default; a follower waiting
 * out a control-plane restart (30 s window) needs to notice it is back sooner.
 * A wide receive window for `runmesh logs`.
 */
const CHANNEL_OPTIONS = {
  'grpc.initial_reconnect_backoff_ms': 250,
  'grpc.max_reconnect_backoff_ms': 5_000,
  ...CLIENT_FLOW_CONTROL_OPTIONS,
};

/** Deadline of every unary call. */
export const UNARY_DEADLINE_MS = 10_000;

export interface Connection {
  readonly server: string;
  readonly jobs: JobServiceClient;
  readonly cluster: ClusterServiceClient;
  readonly tokens: TokenServiceClient;
  readonly audit: AuditServiceClient;
  readonly secrets: SecretServiceClient;
  readonly pipelines: PipelineServiceClient;
  readonly schedules: ScheduleServiceClient;
  readonly templates: TemplateServiceClient;
  readonly hooks: HookServiceClient;
  readonly artifacts: ArtifactServiceClient;
  /** Closes the shared channel (and a WebSocket bridge); idempotent. */
  close(): Promise<void>;
}

/** Adds `authorization: Bearer <token>` to every call (streams included). */
export function bearer(token: string): Interceptor {
  return (options, next) =>
    new InterceptingCall(next(options), {
      start(metadata, listener, start) {
        metadata.set('authorization', `Bearer ${token}`);
        start(metadata, listener);
      },
    });
}

/**
 * Opens clients to `target.server`, any address the agent accepts
 * (transport/address.ts): `host:port` or `tcp://host:port` (plaintext),
 * `tcps://host:port` (TLS), `unix:///path`, `ws://host:port/path` and
 * `wss://...` (the control plane's WebSocket tunnel, through the transport's
 * local bridge). Its token (see cli/context.ts for where one comes from) goes
 * with every call. TLS servers are verified against `RUNMESH_TLS_CA` or the
 * context's CA file (else the system roots); others are plaintext unless
 * `credentials` say otherwise.
 */
export async function connect(target: Target, credentials?: ChannelCredentials): Promise<Connection> {
  const { server } = target;
  const token = tokenFor(server, target.token);
  const interceptors = token ? [bearer(token)] : [];
  const channel = await channelFor(server, credentials);
  const jobs = new JobServiceClient(channel.address, channel.credentials, { ...CHANNEL_OPTIONS, interceptors });
  // Reuse the job client's channel: one TCP connection per command, not one per service.
  const shared = { channelOverride: jobs.getChannel(), interceptors };
  const cluster = new ClusterServiceClient(channel.address, channel.credentials, shared);
  const tokens = new TokenServiceClient(channel.address, channel.credentials, shared);
  const audit = new AuditServiceClient(channel.address, channel.credentials, shared);
  const secrets = new SecretServiceClient(channel.address, channel.credentials, shared);
  const pipelines = new PipelineServiceClient(channel.address, channel.credentials, shared);
  const schedules = new ScheduleServiceClient(channel.address, channel.credentials, shared);
  const templates = new TemplateServiceClient(channel.address, channel.credentials, shared);
  const hooks = new HookServiceClient(channel.address, channel.credentials, shared);
  const artifacts = new ArtifactServiceClient(channel.address, channel.credentials, shared);
  let closed: Promise<void> | undefined;
  return {
    server,
    jobs,
    cluster,
    tokens,
    audit,
    secrets,
    pipelines,
    schedules,
    templates,
    hooks,
    artifacts,
    close() {
      closed ??= (async () => {
        jobs.close();
        await channel.close();
      })();
      return closed;
    },
  };
}

interface Channel {
  address: string;
  credentials: ChannelCredentials;
  /** Releases what the channel needed besides grpc-js (the WebSocket bridge). */
  close(): Promise<void>;
}

async function channelFor(server: string, given: ChannelCredentials | undefined): Promise<Channel> {
  const target = parsedServer(server);
  const ca = target.encrypted ? caFor(server) : undefined;
  const done = (): Promise<void> => Promise.resolve();
  switch (target.scheme) {
    case 'tcp':
      return { address: joinHostPort(target.host, target.port), credentials: given ?? grpcCredentials.createInsecure(), close: done };
    case 'unix':
      return { address: target.address, credentials: given ?? grpcCredentials.createInsecure(), close: done };
    case 'tcps':
      return {
        address: joinHostPort(target.host, target.port),
        credentials: given ?? grpcCredentials.createSsl(readCa(server, ca)),
        close: done,
      };
    case 'ws':
    case 'wss':
      return webSocketChannel(target, ca);
  }
}

function parsedServer(server: string): Address {
  try {
    return parseAddress(server);
  } catch (err) {
    throw new UsageError(`--server: ${(err as Error).message}`, { cause: err });
  }
}

function readCa(server: string, ca: string | undefined): Buffer | null {
  try {
    return ca ? readFileSync(ca) : null;
  } catch (err) {
    throw new UsageError(`cannot read the CA file ${ca} for ${server}: ${(err as Error).message}`);
  }
}

/**
 * ws/wss go through the transport's own dialer (its local bridge, proxies
 * from the environment), loaded only here: the ws module and pino are not
 * worth their start-up time to every other command.
 */
async function webSocketChannel(target: Address, ca: string | undefined): Promise<Channel> {
  const [{ dial }, { createLogger }] = await Promise.all([import('../transport/dial.js'), import('./logging.js')]);
  const dialer = await dial(target, { tls: ca ? { ca } : {}, logger: createLogger(process.env.RUNMESH_LOG_LEVEL ?? 'warn') });
  return { address: dialer.target, credentials: dialer.credentials, close: () => dialer.close() };
}

/** Runs `fn` with a connection to `target` and closes it afterwards, whatever happens. */
export async function withConnection<T>(target: Target, fn: (conn: Connection) => Promise<T>): Promise<T> {
  const conn = await connect(target);
  try {
    return await fn(conn);
  } finally {
    await conn.close();
  }
}

/** The full-arity overload of a generated unary method. */
export type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (error: ServiceError | null, response: Res) => void,
) => ClientUnaryCall;

/**
 * Calls a unary method with the {@link UNARY_DEADLINE_MS} deadline. `name` is
 * the RPC as operators know it (`JobService.Get`), used in error messages;
 * `metadata` goes with the call (the bearer token is added by the channel).
 */
export function unary<Req, Res>(
  conn: Connection,
  name: string,
  method: UnaryMethod<Req, Res>,
  request: Req,
  metadata = new Metadata(),
): Promise<Res> {
  const deadline = new Date(Date.now() + UNARY_DEADLINE_MS);
  return new Promise((resolve, reject) => {
    method(request, metadata, { deadline }, (err, res) => {
      if (err) reject(toRpcError(err, conn.server, name));
      else resolve(res);
    });
  });
}

/** Wraps a grpc-js failure (a ServiceError, or anything a stream threw) as an {@link RpcError}. */
export function toRpcError(err: unknown, server: string, name: string): Error {
  if (!isServiceError(err)) return err instanceof Error ? err : new Error(String(err));
  return new RpcError(err.code, err.details ?? '', server, name, { cause: err });
}

function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === 'number' && 'details' in err;
}
