/**
 * Server side of the transports: bind a grpc.Server on tcp and unix
 * addresses, and serve the WebSocket tunnel on an HTTP server.
 *
 * Create the grpc.Server with KEEPALIVE_SERVER_OPTIONS (see keepalive.ts) so
 * agents' keepalive pings are welcome on every transport.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { joinHostPort, parseAddress, type Scheme, type Target } from './address.js';
import { bindPort, unbindQuietly } from './bind-port.js';
import { serverCredentials, type ServerTlsFiles } from './credentials.js';
import { TransportError } from './errors.js';
import { clearStaleSocket } from './unix-socket.js';

export { serveWebSocketTunnel, type TunnelOptions, type TunnelHandle } from './ws-tunnel.js';

export interface ListenOptions {
  /**
   * TLS for tcp addresses (PEM file paths); plaintext without it. Unix
   * sockets stay plaintext either way: they never leave the host and their
   * directory's permissions decide who may connect.
   */
  tls?: ServerTlsFiles;
  logger: Logger;
}

/** One address the server listens on, with port 0 resolved. */
export interface BoundAddress {
  /** The text the operator gave. */
  requested: string;
  /** "127.0.0.1:40123", "[::1]:7000" or "unix:///tmp/x.sock". */
  address: string;
  /** The same as a client would dial it: "tcp://…", "tcps://…" (TLS) or "unix://…". */
  url: string;
  scheme: Scheme;
  encrypted: boolean;
}

/**
 * Binds `server` on every address (tcp://h:p, bare h:p, tcps://h:p, unix:///path)
 * and returns them resolved. All or nothing: if one fails, those already bound
 * are unbound and the error (a TransportError naming the address) is thrown.
 */
export async function bindAll(server: grpc.Server, addresses: string[], options: ListenOptions): Promise<BoundAddress[]> {
  const log = options.logger.child({ component: 'transport.listen' });
  const targets = addresses.map(parseAddress);
  const credentials = {
    tls: options.tls === undefined ? undefined : await serverCredentials(options.tls),
    plain: grpc.ServerCredentials.createInsecure(),
  };
  const bound: Array<BoundAddress & { grpcPort: string }> = [];
  try {
    for (const [i, target] of targets.entries()) {
      bound.push(await bindOne(server, addresses[i] ?? target.address, target, credentials));
    }
  } catch (err) {
    for (const b of bound) unbindQuietly(server, b.grpcPort);
    throw err;
  }
  for (const b of bound) log.info({ address: b.url }, 'grpc listening');
  return bound.map(({ grpcPort: _, ...rest }) => rest);
}

interface Credentials {
  tls: grpc.ServerCredentials | undefined;
  plain: grpc.ServerCredentials;
}

async function bindOne(
  server: grpc.Server,
  requested: string,
  target: Target,
  credentials: Credentials,
): Promise<BoundAddress & { grpcPort: string }> {
  switch (target.scheme) {
    case 'tcp':
    case 'tcps': {
      if (target.scheme === 'tcps' && credentials.tls === undefined) {
        throw new TransportError(`cannot bind ${requested}: tcps needs TLS options (cert and key)`);
      }
      const encrypted = credentials.tls !== undefined;
      const port = await bindPort(server, joinHostPort(target.host, target.port), credentials.tls ?? credentials.plain);
      const address = joinHostPort(target.host, port);
      const url = `${encrypted ? 'tcps' : 'tcp'}://${address}`;
      return { requested, address, url, scheme: encrypted ? 'tcps' : 'tcp', encrypted, grpcPort: address };
    }
    case 'unix': {
      await clearStaleSocket(target.path);
      await bindPort(server, target.address, credentials.plain);
      const address = target.address;
      return { requested, address, url: address, scheme: 'unix', encrypted: false, grpcPort: address };
    }
    case 'ws':
    case 'wss':
      throw new TransportError(
        `cannot bind ${requested}: WebSocket addresses are served on the HTTP port (serveWebSocketTunnel), not bound on the gRPC server`,
      );
  }
}
