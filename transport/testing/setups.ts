/** One running server + dialed client per transport, so suites can run the same checks over each. */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { pino, type Logger } from 'pino';
import { parseAddress } from '../address.js';
import type { ClientTlsFiles, ServerTlsFiles } from '../credentials.js';
import { dial, type Dialer } from '../dial.js';
import type { Env } from '../proxy.js';
import { bindAll } from '../server.js';
import { serveWebSocketTunnel } from '../ws-tunnel.js';
import type { TestCerts } from './certs.js';
import { startTestServer } from './services.js';

export type TransportKind = 'tcp' | 'tcp+tls' | 'tcp+mtls' | 'unix' | 'ws' | 'wss';
export const ALL_KINDS: readonly TransportKind[] = ['tcp', 'tcp+tls', 'tcp+mtls', 'unix', 'ws', 'wss'];

export const testLogger: Logger = pino({ level: process.env['LOG_LEVEL'] ?? 'silent' });

export interface Running {
  kind: TransportKind;
  /** The address a client dials, e.g. "tcps://127.0.0.1:40123". */
  address: string;
  server: grpc.Server;
  /** The HTTP(S) server carrying the tunnel, for ws/wss. */
  http: HttpServer | undefined;
  clientTls: ClientTlsFiles | undefined;
  /** Dials `address` again (e.g. through a proxy) and builds a client on it. */
  connect(options?: { env?: Env; address?: string; tls?: ClientTlsFiles }): Promise<{ client: grpc.Client; dialer: Dialer }>;
  close(): Promise<void>;
}

interface Listening {
  address: string;
  http: HttpServer | undefined;
  stop: () => Promise<void>;
}

export async function startTransport(kind: TransportKind, certs: TestCerts, tmp: string): Promise<Running> {
  const server = startTestServer();
  const listening = await listen(kind, server, certs, tmp);
  const clientTls = clientTlsFor(kind, certs);
  const opened: Array<{ client: grpc.Client; dialer: Dialer }> = [];
  return {
    kind,
    address: listening.address,
    server,
    http: listening.http,
    clientTls,
    async connect(options = {}) {
      const dialer = await dial(parseAddress(options.address ?? listening.address), {
        tls: options.tls ?? clientTls,
        logger: testLogger,
        env: options.env ?? {},
      });
      const client = new grpc.Client(dialer.target, dialer.credentials, dialer.channelOptions);
      opened.push({ client, dialer });
      return { client, dialer };
    },
    async close() {
      for (const { client, dialer } of opened) {
        client.close();
        await dialer.close();
      }
      await listening.stop();
      server.forceShutdown();
    },
  };
}

function clientTlsFor(kind: TransportKind, certs: TestCerts): ClientTlsFiles | undefined {
  if (kind === 'tcp+tls' || kind === 'wss') return { ca: certs.ca };
  if (kind === 'tcp+mtls') return { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey };
  return undefined;
}

function serverTlsFor(kind: TransportKind, certs: TestCerts): ServerTlsFiles | undefined {
  if (kind === 'tcp+tls') return { cert: certs.serverCert, key: certs.serverKey };
  if (kind === 'tcp+mtls') return { cert: certs.serverCert, key: certs.serverKey, ca: certs.ca, requireClientCert: true };
  return undefined;
}

async function listen(kind: TransportKind, server: grpc.Server, certs: TestCerts, tmp: string): Promise<Listening> {
  if (kind === 'ws' || kind === 'wss') return listenWebSocket(kind, server, certs);
  const requested = kind === 'unix' ? `unix://${join(tmp, `${kind}-${Date.now()}.sock`)}` : 'tcp://127.0.0.1:0';
  const [bound] = await bindAll(server, [requested], { tls: serverTlsFor(kind, certs), logger: testLogger });
  if (bound === undefined) throw new Error('bindAll returned nothing');
  return { address: bound.url, http: undefined, stop: () => Promise.resolve() };
}

async function listenWebSocket(kind: 'ws' | 'wss', server: grpc.Server, certs: TestCerts): Promise<Listening> {
  const http =
    kind === 'wss' ? createHttpsServer({ cert: readFileSync(certs.serverCert), key: readFileSync(certs.serverKey) }) : createHttpServer();
  http.on('request', (_req, res) => res.writeHead(200).end('ok'));
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', () => resolve()));
  const tunnel = await serveWebSocketTunnel(server, http, { logger: testLogger });
  const port = (http.address() as AddressInfo).port;
  return {
    address: `${kind}://127.0.0.1:${port}/agent`,
    http,
    stop: async () => {
      await tunnel.close();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
