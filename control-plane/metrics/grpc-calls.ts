/**
 * gRPC server calls by method and status code, and the two refusals worth a
 * counter of their own: authentication failures (UNAUTHENTICATED) and
 * rate-limited calls (RESOURCE_EXHAUSTED with a `retry-after-ms` trailer,
 * which api/status.ts sets for every RateLimitedError and nothing else).
 *
 * The interceptor goes first in the server's list, before admission: it
 * wraps the base call in place and returns that same object, so the
 * admission interceptor still finds the base call's internals it needs, and
 * a status sent by anyone (the handler, admission refusing a call before its
 * request is read, grpc-js itself on a deadline) passes through it. A call
 * the client cancels is counted as CANCELLED. grpc-js runs interceptors only
 * for registered methods, so `method` is a bounded set.
 */
import {
  status as Status,
  type Metadata,
  type ServerInterceptingCall,
  type ServerInterceptingCallInterface,
  type ServerInterceptor,
} from '@grpc/grpc-js';
import type { Counter, Histogram } from 'prom-client';
import { methodName } from '../api/admission.js';

export interface GrpcCallInstruments {
  handling: Histogram<'method' | 'code'>;
  authFailures: Counter<'service'>;
  rateLimited: Counter<'method'>;
}

type Listener = Parameters<ServerInterceptingCallInterface['start']>[0];

const CODE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(Status)
    .filter(([, v]) => typeof v === 'number')
    .map(([k, v]) => [v, k]),
);

/** The interceptor recording every call's outcome into `m`. */
export function grpcCallMetrics(m: GrpcCallInstruments): ServerInterceptor {
  return (method, call) => {
    const name = methodName(method.path);
    const started = performance.now();
    let done = false;
    const end = (code: Status, trailers?: Metadata | null): void => {
      if (done) return;
      done = true;
      m.handling.observe({ method: name, code: CODE_NAMES[code] ?? String(code) }, (performance.now() - started) / 1000);
      if (code === Status.UNAUTHENTICATED) m.authFailures.inc({ service: name.split('.')[0] ?? name });
      if (code === Status.RESOURCE_EXHAUSTED && (trailers?.get('retry-after-ms').length ?? 0) > 0) m.rateLimited.inc({ method: name });
    };
    const sendStatus = call.sendStatus.bind(call);
    call.sendStatus = (status) => {
      end(status.code, status.metadata);
      sendStatus(status);
    };
    const start = call.start.bind(call);
    call.start = (listener: Listener) =>
      start({
        onReceiveMetadata: (metadata) => listener.onReceiveMetadata(metadata),
        onReceiveMessage: (message) => listener.onReceiveMessage(message),
        onReceiveHalfClose: () => listener.onReceiveHalfClose(),
        onCancel: () => {
          end(Status.CANCELLED);
          listener.onCancel();
        },
      });
    // The same object, wrapped in place (see above); grpc-js chains whatever an interceptor returns.
    return call as ServerInterceptingCall;
  };
}
