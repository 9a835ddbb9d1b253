/**
 * Who may read /metrics. On a loopback listener, anyone who can reach it (the
 * host's own scraper). On any other address, only a caller presenting the
 * token in `--metrics-token-file` as `Authorization: Bearer <token>`; with no
 * such file, nobody (a warning at start says why).
 */
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import { parseHostPort } from '../../transport/address.js';
import { sameDigest, sha256 } from '../secret.js';
import type { Route } from './http-server.js';

/** True for 127.0.0.0/8, ::1, and "localhost". */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  return h === '::1';
}

/** Wraps the /metrics route with the rule above; `tokenFile` is read once, here. */
export async function guardMetrics(route: Route, o: { httpAddress: string; tokenFile: string; log: Logger }): Promise<Route> {
  if (isLoopback(parseHostPort(o.httpAddress).host)) return route;
  if (!o.tokenFile) {
    o.log.warn({ http: o.httpAddress }, '/metrics refused on a non-loopback address without --metrics-token-file');
    return (_req, res) => deny(res, 403, 'metrics need --metrics-token-file on a non-loopback listener\n');
  }
  const want = sha256((await readFile(o.tokenFile, 'utf8')).trim());
  return (req: IncomingMessage, res: ServerResponse) => {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (!m || !sameDigest(sha256(m[1]!), want)) return deny(res, 401, 'metrics need "Authorization: Bearer <token>"\n');
    return route(req, res);
  };
}

function deny(res: ServerResponse, code: number, body: string): void {
  res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8', ...(code === 401 ? { 'www-authenticate': 'Bearer' } : {}) }).end(body);
}
