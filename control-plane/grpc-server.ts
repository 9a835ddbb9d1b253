/**
 * How a peer's gRPC servers are built: keepalive that agrees with the
 * clients, wide HTTP/2 windows for log streams, and what keeps rejected work
 * cheap (api/admission.ts for calls, transport/connection-guard.ts for
 * connections).
 */
import { Server, type ServerInterceptor } from '@grpc/grpc-js';
import { guardConnections, KEEPALIVE_SERVER_OPTIONS, widenServerWindows, type ConnectionLimits } from '../transport/index.js';
import { MAX_MESSAGE_LIMIT, type Admission } from './api/admission.js';

/** `metrics` (metrics/grpc-calls.ts) goes first: it wraps the base call in place, so admission still gets it. */
export function createGrpcServer(admission: Admission, connections: ConnectionLimits, metrics?: ServerInterceptor): Server {
  const server = new Server({
    ...KEEPALIVE_SERVER_OPTIONS,
    // A backstop only: each method's own limit is lower, and set per call by the admission interceptor.
    'grpc.max_receive_message_length': MAX_MESSAGE_LIMIT,
    interceptors: metrics ? [metrics, admission.interceptor] : [admission.interceptor],
  });
  widenServerWindows(server); // agents' log streams: 64 KiB windows halve their throughput
  guardConnections(server, connections);
  return server;
}
