/**
 * What a call must pass before its request is read, so that rejected work
 * stays cheap. One server interceptor, first in the chain:
 * - **Who, before what.** A client call (every service but health,
 *   reflection, the agents' and the peers') is authenticated from its metadata, a
 *   PeerService call checked for the peer credential, and an AgentService call
 *   other than Connect (the artifact uploads) for the agent's credential,
 *   before grpc-js reads a byte of its request; a refused call's body is never
 *   buffered or decoded. Connect authenticates with its first message (Hello).
 *   The guard (guard.ts) still authorizes every call, as before.
 * - **Per-method message limits.** Each method reads messages only up to its
 *   own limit (MESSAGE_LIMITS), checked on the 5-byte length prefix: an
 *   oversized request is RESOURCE_EXHAUSTED, naming the method and the
 *   limit, before its body is read. An agent's stream reads small messages
 *   until the control plane has answered its Hello, then log-sized ones.
 * - **A bounded number of calls awaiting authentication.** Calls past the
 *   cap are UNAVAILABLE at once (retry later), so a flood of them holds
 *   neither memory nor token checks.
 *
 * grpc-js has no per-method receive limit; the limit is set on the call's
 * length-prefix decoder, a grpc-js internal (1.14). If a grpc-js upgrade
 * moves it, every call is refused INTERNAL rather than served without limits.
 */
import {
  Metadata,
  ServerInterceptingCall,
  status as Status,
  type ServerInterceptingCallInterface,
  type ServerInterceptor,
  type ServiceError,
  type StatusObject,
} from '@grpc/grpc-js';
import * as http2 from 'node:http2';
import type { Http2Stream } from 'node:http2';
import { ARTIFACT_MANIFEST_BYTES } from '../../proto/protocol.js';
import { LIMITS as SPEC_LIMITS } from '../jobs/validate.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** The largest spec validate.ts accepts (a 1 MiB script, 64 KiB of env), with 64 KiB for its names, keys and selector. */
export const SPEC_BYTES = SPEC_LIMITS.scriptBytes + SPEC_LIMITS.envBytes + 64 * KiB;

/** A method's largest request message, by "Service.Method"; every other method: DEFAULT_MESSAGE_LIMIT. */
export const MESSAGE_LIMITS: Readonly<Record<string, number>> = Object.freeze({
  'JobService.Submit': SPEC_BYTES,
  // A few of the largest specs, or thousands of ordinary ones.
  'JobService.SubmitBatch': 4 * MiB,
  // A schedule carries one spec; a template its YAML text (256 KiB at most), with room for the rest.
  'ScheduleService.CreateSchedule': SPEC_BYTES,
  'TemplateService.CreateTemplate': 320 * KiB,
  // One attempt, with its spec.
  'PeerService.DeliverAssign': SPEC_BYTES + 64 * KiB,
  // Log chunks: agents send spool records of up to 64 KiB; the rest of their messages are small.
  'AgentService.Connect': 4 * MiB,
  // Artifacts: a manifest of up to a few thousand files (a path is at most 1 KiB), and data in 256 KiB chunks.
  'AgentService.BeginArtifacts': ARTIFACT_MANIFEST_BYTES,
  'AgentService.UploadArtifact': 256 * KiB + KiB,
});

/** Requests of every method not in MESSAGE_LIMITS, and an agent's messages before it is welcomed. */
export const DEFAULT_MESSAGE_LIMIT = 64 * KiB;

/** The largest of all limits: the server-wide `grpc.max_receive_message_length`, a backstop. */
export const MAX_MESSAGE_LIMIT = Math.max(DEFAULT_MESSAGE_LIMIT, ...Object.values(MESSAGE_LIMITS));

/** How each kind of caller is authenticated from its metadata; undefined lets the call in. */
export interface AdmissionChecks {
  /** A client call: its bearer token (gate.identify). */
  client(method: string, metadata: Metadata, from: string): Promise<ServiceError | Partial<ServiceError> | undefined>;
  /** A PeerService call: the peer credential. */
  peer(metadata: Metadata): ServiceError | Partial<ServiceError> | undefined;
  /** An AgentService call other than Connect: the agent's name and credential. */
  agent(metadata: Metadata): Promise<ServiceError | Partial<ServiceError> | undefined>;
}

/**
 * Services any caller may use without a credential: health probes and
 * reflection (tools list the API before they hold a token). Every other
 * service is a client service unless named below (deny by default: a service
 * added later is authenticated before its request is read, with no entry here).
 */
const OPEN_SERVICES = new Set(['Health', 'ServerReflection']);

/** `agent`: Connect, authenticated by its Hello; `agent-call`: the agent's other calls, by their metadata. */
type Kind = 'client' | 'peer' | 'agent' | 'agent-call' | 'open';

function kindOf(method: string): Kind {
  const [service] = method.split('.');
  if (service === 'PeerService') return 'peer';
  if (service === 'AgentService') return method === 'AgentService.Connect' ? 'agent' : 'agent-call';
  return OPEN_SERVICES.has(service ?? '') ? 'open' : 'client';
}

/** "/runmesh.v1.JobService/Submit" → "JobService.Submit" (the authorization table's names). */
export function methodName(path: string): string {
  const m = /^\/(?:[\w.]*\.)?(\w+)\/(\w+)$/.exec(path);
  return m ? `${m[1]}.${m[2]}` : path;
}

/** The grpc-js internals a call's receive limit lives in (BaseServerInterceptingCall, 1.14). */
interface DecoderInternals {
  stream: Http2Stream;
  maxReceiveMessageSize: number;
  decoder: { maxReadMessageLength: number; readMessageSize: number; write(data: Buffer): Buffer[] };
}

function hasDecoder(call: unknown): call is DecoderInternals {
  const c = call as Partial<DecoderInternals> | undefined;
  return (
    typeof c?.maxReceiveMessageSize === 'number' &&
    typeof c.decoder?.maxReadMessageLength === 'number' &&
    typeof c.decoder.write === 'function'
  );
}

/** Makes `call` read messages of at most `limit()` bytes, refusing a larger one with a status naming `name`. */
function limitMessages(call: DecoderInternals, name: string, limit: () => number): void {
  const { decoder } = call;
  const write = decoder.write.bind(decoder);
  decoder.write = (data) => {
    try {
      return write(data);
    } catch (err) {
      if (decoder.readMessageSize <= decoder.maxReadMessageLength) throw err;
      stopSending(call);
      // grpc-js answers RESOURCE_EXHAUSTED with this message, and reads no further.
      throw new Error(`${name} accepts messages of at most ${limit()} bytes; this one has ${decoder.readMessageSize}`, { cause: err });
    }
  };
}

/** A count with a ceiling. */
class Slots {
  private used = 0;
  constructor(readonly max: number) {}
  take(): (() => void) | undefined {
    if (this.used >= this.max) return undefined;
    this.used++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used--;
    };
  }
}

export interface AdmissionOptions {
  /** Calls awaiting authentication at once (`--max-unauthenticated-calls`); more are refused UNAVAILABLE. */
  maxUnauthenticatedCalls: number;
}

/**
 * The interceptor (pass it first in the grpc.Server's `interceptors`). The
 * checks are set with `use` once the gate exists; until then client and peer
 * calls are refused UNAVAILABLE (their services are not added yet either).
 */
export class Admission {
  private checks: AdmissionChecks | undefined;
  private readonly pending: Slots;

  constructor(o: AdmissionOptions) {
    this.pending = new Slots(o.maxUnauthenticatedCalls);
  }

  use(checks: AdmissionChecks): void {
    this.checks = checks;
  }

  readonly interceptor: ServerInterceptor = (method, call) => {
    const name = methodName(method.path);
    const kind = kindOf(name);
    if (!hasDecoder(call)) return refuseAll(call, Status.INTERNAL, 'message size limits cannot be applied with this grpc-js version');
    const full = MESSAGE_LIMITS[name] ?? DEFAULT_MESSAGE_LIMIT;
    // Until the call is authenticated it reads small messages only (an agent's Hello); then its method's limit.
    let limit = kind === 'open' ? full : Math.min(full, DEFAULT_MESSAGE_LIMIT);
    const setLimit = (bytes: number): void => {
      limit = bytes;
      call.decoder.maxReadMessageLength = bytes;
      call.maxReceiveMessageSize = bytes;
    };
    setLimit(limit);
    limitMessages(call, name, () => limit);
    if (kind === 'open') return new ServerInterceptingCall(call);
    let release: (() => void) | undefined;
    const authenticated = (): void => {
      release?.();
      setLimit(full);
    };
    return new ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, pass) => {
            release = this.pending.take();
            if (!release) {
              return refuse(call, Status.UNAVAILABLE, `too many calls awaiting authentication (at most ${this.pending.max}); retry later`);
            }
            // An agent authenticates with its first message; it is welcomed with its first answer.
            if (kind === 'agent') return pass(metadata);
            void this.check(kind, name, metadata, call.getPeer()).then((refusal) => {
              if (refusal) {
                release?.();
                return refuse(call, refusal.code ?? Status.UNAUTHENTICATED, refusal.details ?? 'not authenticated', refusal.metadata);
              }
              authenticated();
              pass(metadata);
            });
          },
          onCancel: () => release?.(),
        }),
      sendMessage: (message, next) => {
        authenticated();
        next(message);
      },
      sendStatus: (status, next) => {
        release?.();
        next(status);
      },
    });
  };

  private async check(
    kind: 'client' | 'peer' | 'agent-call',
    name: string,
    metadata: Metadata,
    from: string,
  ): Promise<Partial<ServiceError> | undefined> {
    const checks = this.checks;
    if (!checks) return { code: Status.UNAVAILABLE, details: 'the server is starting; retry' };
    try {
      if (kind === 'agent-call') return await checks.agent(metadata);
      return kind === 'peer' ? checks.peer(metadata) : await checks.client(name, metadata, from);
    } catch {
      return { code: Status.INTERNAL, details: `${name}: authentication failed` };
    }
  }
}

/** Ends `call` with a status before its request is read: grpc-js never asks for the body. */
function refuse(call: ServerInterceptingCallInterface & DecoderInternals, code: Status, details: string, metadata?: Metadata): void {
  const status: StatusObject = { code, details, metadata: metadata ?? new Metadata() };
  call.sendStatus(status);
  stopSending(call);
}

/**
 * Once the status is sent, asks the client to stop sending the request
 * (RST_STREAM NO_ERROR, RFC 9113 §8.1, as grpc-go does). Without it the
 * server had to read and discard the rest of every refused 15 MB body, and
 * under a flood the connections' keepalive pings timed out behind it.
 */
function stopSending(call: DecoderInternals): void {
  setImmediate(() => {
    if (!call.stream.closed && !call.stream.destroyed) call.stream.close(http2.constants.NGHTTP2_NO_ERROR);
  });
}

function refuseAll(call: ServerInterceptingCallInterface, code: Status, details: string): ServerInterceptingCall {
  return new ServerInterceptingCall(call, {
    start: (next) => next({ onReceiveMetadata: () => call.sendStatus({ code, details, metadata: new Metadata() }) }),
  });
}
