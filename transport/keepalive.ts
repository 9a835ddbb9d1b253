/**
 * Keepalive settings that agree on both ends, for every transport.
 *
 * The client pings every 20 s, idle or not; the server must accept that or it
 * answers GOAWAY ENHANCE_YOUR_CALM ("too_many_pings") and the client doubles
 * its interval. So the server's minimum ping interval (10 s) sits below the
 * client's ping time, and both permit pings without calls: an agent's stream
 * is often idle for minutes between jobs, and the NATs and proxies on the way
 * drop idle flows. The server also pings on its own so it notices a vanished
 * agent within about 30 s instead of the TCP default of hours. An agent's
 * session stream pings much faster (SESSION_KEEPALIVE_OPTIONS).
 */
import type { ChannelOptions } from '@grpc/grpc-js';

/** How often each side sends an HTTP/2 ping; also the WebSocket tunnel's ping period. */
export const KEEPALIVE_TIME_MS = 20_000;
/** How long a ping may stay unanswered before the connection is declared dead. */
export const KEEPALIVE_TIMEOUT_MS = 10_000;

/**
 * An agent's stream to its control-plane peer pings faster: a peer that
 * stopped answering (stalled, SIGSTOPped, its host gone) is noticed within
 * time + timeout = 2.5 s, well inside a peer's lease (5 s), so the agent moves
 * to another peer before the mesh takes it for lost and re-queues its jobs.
 * A ping is answered by the peer's HTTP/2 layer on its event loop, so this is
 * also the peer's liveness as a process, not only the network's.
 */
export const SESSION_KEEPALIVE_TIME_MS = 1_000;
export const SESSION_KEEPALIVE_TIMEOUT_MS = 1_500;

/** Pass to `new grpc.Server(...)` (merge with your own options). */
export const KEEPALIVE_SERVER_OPTIONS: Readonly<ChannelOptions> = Object.freeze({
  'grpc.keepalive_time_ms': KEEPALIVE_TIME_MS,
  'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
  'grpc.keepalive_permit_without_calls': 1,
  // Below the agents' session pings, so a server that enforces it never answers them with too_many_pings.
  'grpc.http2.min_ping_interval_without_data_ms': SESSION_KEEPALIVE_TIME_MS / 2,
});

/** Part of every Dialer's channel options. */
export const KEEPALIVE_CLIENT_OPTIONS: Readonly<ChannelOptions> = Object.freeze({
  'grpc.keepalive_time_ms': KEEPALIVE_TIME_MS,
  'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
  'grpc.keepalive_permit_without_calls': 1,
});

/** On top of a Dialer's channel options for an agent's session stream (see SESSION_KEEPALIVE_TIME_MS). */
export const SESSION_KEEPALIVE_OPTIONS: Readonly<ChannelOptions> = Object.freeze({
  'grpc.keepalive_time_ms': SESSION_KEEPALIVE_TIME_MS,
  'grpc.keepalive_timeout_ms': SESSION_KEEPALIVE_TIMEOUT_MS,
  'grpc.keepalive_permit_without_calls': 1,
});
