/**
 * Client side of the WebSocket transport: a private local bridge. grpc-js
 * dials a Unix socket in a 0700 temp dir; every connection it opens there
 * becomes a new WebSocket to the remote URL, spliced both ways. grpc-js's own
 * reconnect logic therefore drives WebSocket reconnects with no extra code.
 */
import type { Agent } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { WebSocket } from 'ws';
import type { ClientTlsMaterial } from './credentials.js';
import { TransportError } from './errors.js';
import { makePrivateDir, removeDir } from './unix-socket.js';
import { splice } from './splice.js';

export interface BridgeOptions {
  /** ws:// or wss:// URL of the tunnel. */
  url: string;
  /** wss only: CA to trust and the client certificate for mTLS. */
  tls: ClientTlsMaterial;
  /** HTTP proxy agent (CONNECT), when the environment names one for this URL. */
  agent: Agent | undefined;
  logger: Logger;
}

/** The WebSocket handshake must finish within this; grpc-js then sees a failed connect and backs off. */
const HANDSHAKE_TIMEOUT_MS = 10_000;

export interface WebSocketBridge {
  readonly socketPath: string;
  /** Stops accepting, drops open connections, removes the socket directory. Idempotent. */
  close(): Promise<void>;
}

export async function startWebSocketBridge(options: BridgeOptions): Promise<WebSocketBridge> {
  const dir = await makePrivateDir('bridge');
  const socketPath = join(dir, 'bridge.sock');
  const bridge = new Bridge(options, dir, socketPath);
  try {
    await bridge.listen();
  } catch (err) {
    await removeDir(dir);
    throw new TransportError(`cannot start the WebSocket bridge for ${options.url}`, { cause: err });
  }
  return bridge;
}

class Bridge implements WebSocketBridge {
  readonly #server: Server;
  readonly #open = new Set<{ local: Socket; ws: WebSocket }>();
  readonly #log: Logger;
  #closing: Promise<void> | undefined;

  constructor(
    private readonly options: BridgeOptions,
    private readonly dir: string,
    readonly socketPath: string,
  ) {
    this.#log = options.logger.child({ component: 'transport.ws-bridge', url: options.url });
    this.#server = createServer((local) => this.#accept(local));
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.socketPath, () => {
        this.#server.off('error', reject);
        this.#server.on('error', (err) => this.#log.error({ err }, 'websocket bridge server error'));
        resolve();
      });
    });
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const stopped = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const { local, ws } of this.#open) {
      local.destroy();
      ws.terminate();
    }
    await stopped;
    await removeDir(this.dir);
  }

  #accept(local: Socket): void {
    // Hold grpc-js's first bytes until the WebSocket is open; the splice resumes reading.
    local.pause();
    const { tls, agent } = this.options;
    const ws = new WebSocket(this.options.url, {
      agent,
      ca: tls.ca,
      cert: tls.cert,
      key: tls.key,
      perMessageDeflate: false,
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
    });
    const entry = { local, ws };
    this.#open.add(entry);
    const beforeOpen = (err: Error): void => {
      this.#log.warn({ err }, 'websocket connect failed');
      local.destroy();
    };
    ws.on('error', beforeOpen);
    local.once('close', () => {
      this.#open.delete(entry);
      if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
    });
    local.on('error', () => local.destroy());
    ws.once('open', () => {
      ws.off('error', beforeOpen);
      void splice(ws, local).then((err) => this.#log.debug({ err }, 'websocket bridge connection ended'));
      local.resume();
    });
  }
}
