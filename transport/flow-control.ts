/**
 * HTTP/2 receive windows wide enough for log streams.
 *
 * HTTP/2 lets a sender have only one receive window of unacknowledged bytes
 * in flight per stream and per connection; the default is 64 KiB, so a
 * stream moves at most 64 KiB per round trip plus the receiver's event-loop
 * turn. An agent's log stream is exactly that shape: 200 MB of stdout moved
 * at 25–28 MB/s over loopback with the server idle half the time, waiting
 * for WINDOW_UPDATEs. With 1 MiB windows it moves at 50–57 MB/s (1 MiB is
 * also grpc-java's default). The window is a ceiling, not an allocation:
 * memory is only used while the receiver lags behind.
 *
 * grpc-js has a channel option for the client's window
 * (`grpc-node.flow_control_window`) but none for the server's (grpc-node
 * PR #3058 proposes one), so `widenServerWindows` raises it on each HTTP/2
 * session the server accepts, on every transport (the WebSocket tunnel's
 * private socket included).
 */
import type { ChannelOptions, Server } from '@grpc/grpc-js';
import type { Http2Server, Http2Session, Http2SecureServer } from 'node:http2';

export const FLOW_CONTROL_WINDOW = 1 << 20;

/** Merge into a client's channel options: its receive window (what the server streams to it). */
export const CLIENT_FLOW_CONTROL_OPTIONS: Readonly<ChannelOptions> = Object.freeze({
  'grpc-node.flow_control_window': FLOW_CONTROL_WINDOW,
});

/** The grpc-js internal every listener and connection injector is created through (1.14). */
interface HasHttp2ServerFactory {
  createHttp2Server(credentials: unknown): Http2Server | Http2SecureServer;
}

/**
 * Makes every HTTP/2 session `server` accepts advertise `bytes` as its
 * stream window and open its connection window as wide. Call before binding.
 * Throws if this grpc-js no longer creates its HTTP/2 servers the way this
 * relies on, rather than silently serving with 64 KiB windows.
 */
export function widenServerWindows(server: Server, bytes = FLOW_CONTROL_WINDOW): void {
  const internals = server as unknown as HasHttp2ServerFactory;
  if (typeof internals.createHttp2Server !== 'function') {
    throw new Error('grpc-js Server has no createHttp2Server: widenServerWindows needs updating for this grpc-js version');
  }
  const create = internals.createHttp2Server.bind(server);
  internals.createHttp2Server = (credentials) => {
    const http2Server = create(credentials);
    http2Server.on('session', (session: Http2Session) => widen(session, bytes));
    return http2Server;
  };
}

function widen(session: Http2Session, bytes: number): void {
  try {
    session.settings({ initialWindowSize: bytes }); // every stream's window, open ones included
    session.setLocalWindowSize(bytes); // the connection's
  } catch {
    // A session destroyed before it got here has nothing left to widen.
  }
}
