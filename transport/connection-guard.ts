/**
 * Connections that are not gRPC cost nothing for long.
 *
 * Node's HTTP/2 server closes a connection that sends bytes other than the
 * HTTP/2 preface within a few hundred ms. One that sends nothing, or stops
 * after the preface, or never finishes its TLS handshake, was held until the
 * keepalive ping timed out (20 s + 10 s) or Node's TLS handshake timeout
 * (120 s): each a file descriptor, and a flood of them ran the server out.
 * `guardConnections` gives every connection a handshake deadline (TLS done
 * and the client's HTTP/2 SETTINGS received), and caps connections per
 * client address and in all; a connection over a cap is closed at once.
 *
 * Like flow-control.ts it hooks every HTTP/2 server the grpc.Server creates
 * (listeners and the WebSocket tunnel's connection injector alike).
 */
import type { Server } from '@grpc/grpc-js';
import type { Http2Server, Http2SecureServer, Http2Session } from 'node:http2';
import type { Socket } from 'node:net';

export interface ConnectionLimits {
  /** Time from accept to the client's HTTP/2 SETTINGS (TLS handshake included). */
  handshakeTimeoutMs: number;
  /** Open connections, all addresses together (tunnelled ones included). */
  maxConnections: number;
  /** Open connections from one IP address (unix sockets and tunnelled connections have none, and only count in all). */
  maxConnectionsPerAddress: number;
}

export const DEFAULT_CONNECTION_LIMITS: Readonly<ConnectionLimits> = Object.freeze({
  handshakeTimeoutMs: 10_000,
  maxConnections: 10_000,
  maxConnectionsPerAddress: 1_000,
});

/** The grpc-js internal every listener and connection injector is created through (1.14). */
interface HasHttp2ServerFactory {
  createHttp2Server(credentials: unknown): Http2Server | Http2SecureServer;
}

/** Connection counts, shared by every listener of one grpc.Server. */
class ConnectionCounts {
  private total = 0;
  private readonly perAddress = new Map<string, number>();

  constructor(private readonly limits: ConnectionLimits) {}

  /** Counts `socket` until it closes; false (nothing counted) when a cap is reached. */
  admit(socket: Socket): boolean {
    const address = socket.remoteAddress;
    const fromAddress = address === undefined ? 0 : (this.perAddress.get(address) ?? 0);
    if (this.total >= this.limits.maxConnections) return false;
    if (address !== undefined && fromAddress >= this.limits.maxConnectionsPerAddress) return false;
    this.total++;
    if (address !== undefined) this.perAddress.set(address, fromAddress + 1);
    socket.once('close', () => {
      this.total--;
      if (address === undefined) return;
      const left = (this.perAddress.get(address) ?? 1) - 1;
      if (left > 0) this.perAddress.set(address, left);
      else this.perAddress.delete(address);
    });
    return true;
  }
}

/**
 * Applies `limits` to every connection `server` accepts. Call before binding.
 * Throws if this grpc-js no longer creates its HTTP/2 servers the way this
 * relies on, rather than silently serving without the limits.
 */
export function guardConnections(server: Server, limits: ConnectionLimits = DEFAULT_CONNECTION_LIMITS): void {
  const internals = server as unknown as HasHttp2ServerFactory;
  if (typeof internals.createHttp2Server !== 'function') {
    throw new Error('grpc-js Server has no createHttp2Server: guardConnections needs updating for this grpc-js version');
  }
  const counts = new ConnectionCounts(limits);
  const create = internals.createHttp2Server.bind(server);
  internals.createHttp2Server = (credentials) => {
    const http2Server = create(credentials);
    guard(http2Server, counts, limits.handshakeTimeoutMs);
    return http2Server;
  };
}

function guard(http2Server: Http2Server | Http2SecureServer, counts: ConnectionCounts, handshakeTimeoutMs: number): void {
  const deadlines = new HandshakeDeadlines(handshakeTimeoutMs);
  // Before Node's own listener: a refused socket never gets an HTTP/2 session.
  http2Server.prependListener('connection', (socket: Socket) => {
    if (!counts.admit(socket)) {
      socket.destroy();
      return;
    }
    deadlines.start(socket);
  });
  http2Server.on('session', (session: Http2Session) => {
    const met = deadlines.metBy(session);
    session.once('remoteSettings', met);
  });
}

/**
 * Each accepted socket's handshake deadline, until its session receives the
 * client's SETTINGS. A session is matched to its socket by the client's
 * address and port (a TLS session's socket is not the accepted one); one
 * without a port (a unix socket, a tunnelled connection) is plaintext, and
 * Node creates its session while the socket is being accepted.
 */
class HandshakeDeadlines {
  private readonly byEndpoint = new Map<string, Socket>();
  private readonly timers = new WeakMap<Socket, NodeJS.Timeout>();
  private accepting: Socket | undefined;

  constructor(private readonly timeoutMs: number) {}

  start(socket: Socket): void {
    const timer = setTimeout(() => socket.destroy(), this.timeoutMs);
    timer.unref();
    this.timers.set(socket, timer);
    const key = endpoint(socket);
    if (key !== undefined) this.byEndpoint.set(key, socket);
    this.accepting = socket;
    queueMicrotask(() => {
      if (this.accepting === socket) this.accepting = undefined;
    });
    socket.once('close', () => {
      clearTimeout(timer);
      if (key !== undefined && this.byEndpoint.get(key) === socket) this.byEndpoint.delete(key);
    });
  }

  /** What to call once `session` received the client's SETTINGS: clears its socket's deadline. */
  metBy(session: Http2Session): () => void {
    const key = endpoint(session.socket);
    const socket = (key !== undefined ? this.byEndpoint.get(key) : undefined) ?? this.accepting;
    return () => {
      if (socket === undefined) return;
      clearTimeout(this.timers.get(socket));
      if (key !== undefined) this.byEndpoint.delete(key);
    };
  }
}

function endpoint(socket: Pick<Socket, 'remoteAddress' | 'remotePort'> | undefined): string | undefined {
  if (socket?.remoteAddress === undefined || socket.remotePort === undefined) return undefined;
  return `${socket.remoteAddress}|${socket.remotePort}`;
}
