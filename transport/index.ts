/**
 * transport/: how bytes reach the gRPC layer. tcp (HTTP/2, optional TLS/mTLS),
 * unix (same host), and ws/wss (HTTP/2 bytes inside WebSocket frames, for
 * HTTP/1.1-only proxies). gRPC runs on top unchanged. quic:// is recognised
 * and refused until Node ships QUIC.
 *
 * Server: bindAll() for tcp/unix, serveWebSocketTunnel() on the HTTP port.
 * Client: parseAddress(), dial(), FallbackDialer.
 * Both: KEEPALIVE_SERVER_OPTIONS / KEEPALIVE_CLIENT_OPTIONS, which agree;
 * widenServerWindows() / CLIENT_FLOW_CONTROL_OPTIONS for 1 MiB HTTP/2 windows.
 * Retry (retry.ts): which gRPC statuses a client retries, and the one Backoff.
 */
export { parseAddress, joinHostPort, DEFAULT_SERVER, DEFAULT_TUNNEL_PATH, type Target, type Scheme } from './address.js';
export { bindAll, serveWebSocketTunnel, type ListenOptions, type BoundAddress, type TunnelOptions, type TunnelHandle } from './server.js';
export { dial, FallbackDialer, type Dialer, type DialOptions, type FallbackOptions } from './client.js';
export { channelCredentials, type ServerTlsFiles, type ClientTlsFiles } from './credentials.js';
export { fingerprintOf, parseFingerprint, firstCertificateDer, pinnedCaFile, type CaPin } from './pin.js';
export {
  KEEPALIVE_SERVER_OPTIONS,
  KEEPALIVE_CLIENT_OPTIONS,
  KEEPALIVE_TIME_MS,
  KEEPALIVE_TIMEOUT_MS,
  SESSION_KEEPALIVE_OPTIONS,
} from './keepalive.js';
export { widenServerWindows, CLIENT_FLOW_CONTROL_OPTIONS, FLOW_CONTROL_WINDOW } from './flow-control.js';
export { guardConnections, DEFAULT_CONNECTION_LIMITS, type ConnectionLimits } from './connection-guard.js';
export * from './errors.js';
export * from './retry.js';
