/**
 * Server side of the WebSocket transport: agents behind HTTP/1.1-only proxies
 * reach `/agent` on the control plane's plain HTTP port, and each WebSocket is
 * spliced into a fresh connection to a private Unix socket that the same
 * grpc.Server listens on. gRPC never knows a tunnel was involved.
 */
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { WebSocketServer, WebSocket } from 'ws';
import { DEFAULT_TUNNEL_PATH } from './address.js';
import { bindPort, unbindQuietly } from './bind-port.js';
import { KEEPALIVE_TIME_MS } from './keepalive.js';
import { makePrivateDir, removeDir, sweepDeadPrivateDirs } from './unix-socket.js';
import { splice } from './splice.js';

export interface TunnelOptions {
  /** Upgrade path served; other upgrade paths get 404. Default "/agent". */
  path?: string;
  logger: Logger;
  /** WebSocket ping period, so idle tunnels survive proxies; a peer silent for two periods is dropped. Default 20 s. */
  pingIntervalMs?: number;
}

export interface TunnelHandle {
  /** The private Unix socket the grpc.Server listens on for tunnelled connections. */
  readonly socketPath: string;
  /** Stops accepting, drops every open tunnel, unbinds the socket and removes its directory. Idempotent. */
  close(): Promise<void>;
}

/** Bounded wait for spliced pairs to report closed during close(). */
const CLOSE_WAIT_MS = 2_000;

/**
 * Serves the tunnel at `path` on `http`; `server` gets a private Unix socket bound for it.
 * First sweeps the socket directories that dead processes left behind.
 */
export async function serveWebSocketTunnel(server: grpc.Server, http: HttpServer, options: TunnelOptions): Promise<TunnelHandle> {
  const swept = await sweepDeadPrivateDirs();
  if (swept.length > 0) options.logger.info({ dirs: swept }, 'removed socket directories left by dead processes');
  const dir = await makePrivateDir('tunnel');
  const socketPath = join(dir, 'grpc.sock');
  try {
    await bindPort(server, `unix://${socketPath}`, grpc.ServerCredentials.createInsecure());
  } catch (err) {
    await removeDir(dir);
    throw err;
  }
  return new WebSocketTunnel(server, http, dir, socketPath, options);
}

class WebSocketTunnel implements TunnelHandle {
  readonly #wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  readonly #path: string;
  readonly #log: Logger;
  /** Open tunnels, each with the promise that settles when both of its sides are closed. */
  readonly #tunnels = new Map<WebSocket, Promise<unknown>>();
  /** Tunnels that answered (pong or data) since the last ping round. */
  readonly #heard = new WeakSet<WebSocket>();
  readonly #pinger: NodeJS.Timeout;
  readonly #onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => this.#upgrade(req, socket, head);
  #closing: Promise<void> | undefined;
  #count = 0;

  constructor(
    private readonly server: grpc.Server,
    private readonly http: HttpServer,
    private readonly dir: string,
    readonly socketPath: string,
    options: TunnelOptions,
  ) {
    this.#path = options.path ?? DEFAULT_TUNNEL_PATH;
    this.#log = options.logger.child({ component: 'transport.ws-tunnel', path: this.#path });
    this.#pinger = setInterval(() => this.#pingAll(), options.pingIntervalMs ?? KEEPALIVE_TIME_MS).unref();
    http.on('upgrade', this.#onUpgrade);
    this.#log.info({ socket_path: socketPath }, 'websocket tunnel serving');
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.http.off('upgrade', this.#onUpgrade);
    clearInterval(this.#pinger);
    for (const ws of this.#tunnels.keys()) ws.terminate();
    this.#wss.close();
    const drained = Promise.allSettled(this.#tunnels.values());
    await Promise.race([drained, new Promise((resolve) => setTimeout(resolve, CLOSE_WAIT_MS).unref())]);
    unbindQuietly(this.server, `unix://${this.socketPath}`);
    await removeDir(this.dir);
    this.#log.info('websocket tunnel closed');
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const pathname = new URL(req.url ?? '/', 'http://tunnel.invalid').pathname;
    if (pathname !== this.#path || this.#closing !== undefined) {
      socket.on('error', () => socket.destroy());
      const status = this.#closing === undefined ? '404 Not Found' : '503 Service Unavailable';
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#accept(ws, req));
  }

  #accept(ws: WebSocket, req: IncomingMessage): void {
    const log = this.#log.child({ tunnel: ++this.#count, remote: req.socket.remoteAddress });
    const upstream = connect(this.socketPath);
    this.#heard.add(ws);
    ws.on('pong', () => this.#heard.add(ws));
    ws.on('message', () => this.#heard.add(ws));
    const done = splice(ws, upstream).then((err) => {
      this.#tunnels.delete(ws);
      log.debug({ err }, 'websocket tunnel ended');
    });
    this.#tunnels.set(ws, done);
    log.debug('websocket tunnel opened');
  }

  #pingAll(): void {
    for (const ws of this.#tunnels.keys()) {
      if (!this.#heard.has(ws)) {
        this.#log.warn('websocket tunnel silent, dropping it');
        ws.terminate();
        continue;
      }
      this.#heard.delete(ws);
      if (ws.readyState === WebSocket.OPEN) ws.ping(undefined, undefined, () => undefined);
    }
  }
}
