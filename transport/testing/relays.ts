/**
 * Middleboxes for drop tests: a byte relay (tcp or unix) and an HTTP CONNECT
 * proxy. Both can kill every connection passing through them, which is how a
 * test pulls the network out from under a live gRPC stream.
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect, createServer, type AddressInfo, type NetConnectOpts, type Server, type Socket } from 'node:net';

class Connections {
  readonly #sockets = new Set<Socket>();

  /** Pipes a and b both ways; an error or close on either destroys both. */
  pair(a: Socket, b: Socket): void {
    for (const s of [a, b]) {
      this.#sockets.add(s);
      s.on('error', () => undefined);
      s.once('close', () => {
        this.#sockets.delete(s);
        a.destroy();
        b.destroy();
      });
    }
    a.pipe(b);
    b.pipe(a);
  }

  /** Destroys every socket; returns how many there were. */
  killAll(): number {
    const n = this.#sockets.size;
    for (const s of this.#sockets) s.destroy();
    return n;
  }
}

function closeServer(server: Server | HttpServer): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Forwards every connection accepted on `listen` to `upstream`, byte for byte. */
export class Relay {
  readonly #connections = new Connections();
  readonly #server: Server;

  private constructor(upstream: NetConnectOpts) {
    this.#server = createServer((down) => this.#connections.pair(down, connect(upstream)));
  }

  static async start(listen: { port: 0; host: string } | { path: string }, upstream: NetConnectOpts): Promise<Relay> {
    const relay = new Relay(upstream);
    await new Promise<void>((resolve, reject) => {
      relay.#server.once('error', reject);
      relay.#server.listen(listen, () => resolve());
    });
    return relay;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  killAll(): number {
    return this.#connections.killAll();
  }

  async close(): Promise<void> {
    this.killAll();
    await closeServer(this.#server);
  }
}

/** A minimal HTTP proxy that only does CONNECT, as corporate proxies do for wss. */
export class ConnectProxy {
  readonly #connections = new Connections();
  readonly #server = createHttpServer((_req, res) => res.writeHead(405).end());
  connects = 0;

  private constructor() {
    this.#server.on('connect', (req, client: Socket, head: Buffer) => {
      this.connects += 1;
      const [host, port] = (req.url ?? '').split(':');
      const upstream = connect({ host, port: Number(port) }, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.write(head);
      });
      this.#connections.pair(client, upstream);
    });
  }

  static async start(): Promise<ConnectProxy> {
    const proxy = new ConnectProxy();
    await new Promise<void>((resolve) => proxy.#server.listen(0, '127.0.0.1', () => resolve()));
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  killAll(): number {
    return this.#connections.killAll();
  }

  async close(): Promise<void> {
    this.killAll();
    this.#server.closeAllConnections();
    await closeServer(this.#server);
  }
}
