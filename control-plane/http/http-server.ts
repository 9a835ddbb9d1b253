/**
 * The HTTP port (HTTPS under `--tls-auto`): `/healthz` (the process is up), `/readyz` (the store
 * answers and state is loaded). The WebSocket tunnel and /metrics hang off
 * the same server.
 */
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { parseHostPort } from '../../transport/address.js';

export type Route = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export interface HttpOptions {
  ready(): Promise<{ ok: boolean; detail: string }>;
  /**
   * More routes; read on every request, so routes added after start are served.
   * A key ending in '/' also takes every path under it that no exact key names
   * (the longest such key wins): '/' is the console's.
   */
  routes?: Record<string, Route>;
  /** Serve HTTPS with this certificate (chain) and key, PEM; plain HTTP without. */
  tls?: { cert: Buffer; key: Buffer };
}

export function createHttpServer(o: HttpOptions): Server {
  const builtin: Record<string, Route> = {
    '/healthz': (_req, res) => text(res, 200, 'ok\n'),
    '/readyz': async (_req, res) => {
      const r = await o.ready().catch((err: unknown) => ({ ok: false, detail: String(err) }));
      text(res, r.ok ? 200 : 503, `${r.detail}\n`);
    },
  };
  const handle: RequestListener = (req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const route = builtin[path] ?? o.routes?.[path] ?? underPrefix(o.routes, path);
    if (!route) return text(res, 404, 'not found\n');
    Promise.resolve(route(req, res)).catch(() => text(res, 500, 'internal error\n'));
  };
  return o.tls ? createHttpsServer({ cert: o.tls.cert, key: o.tls.key }, handle) : createServer(handle);
}

function underPrefix(routes: Record<string, Route> | undefined, path: string): Route | undefined {
  let best = '';
  for (const key of Object.keys(routes ?? {})) if (key.endsWith('/') && path.startsWith(key) && key.length > best.length) best = key;
  return best ? routes?.[best] : undefined;
}

function text(res: ServerResponse, code: number, body: string): void {
  if (res.headersSent) return void res.end();
  res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8' }).end(body);
}

/** Listens on `host:port` (port 0 picks one; no host: 127.0.0.1); resolves with the bound address. */
export function listenHttp(server: Server, address: string): Promise<string> {
  const { host, port } = parseHostPort(address);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host || '127.0.0.1', () => {
      server.off('error', reject);
      const a = server.address() as AddressInfo;
      resolve(`${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`);
    });
  });
}
