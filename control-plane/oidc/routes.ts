/**
 * The issuer's HTTP routes: the discovery document and the JWKS. Open to
 * anyone by nature (a relying party fetches them unauthenticated), so each
 * client address is held to a rate (429 with Retry-After past it), and the
 * answers are small, built from memory, and cacheable for a few minutes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { RateLimiter, type Rate } from '../auth/index.js';
import { DISCOVERY_PATH, JWKS_PATH, type Issuer } from './issuer.js';

type Route = (req: IncomingMessage, res: ServerResponse) => void;

/** Per client address: 20 documents a second, bursts of 100. */
export const OIDC_ROUTE_RATE: Rate = { perSecond: 20, burst: 100 };
/** How long a relying party may cache them: well under a new key's lead time. */
const MAX_AGE_S = 300;

export function oidcRoutes(issuer: Issuer, rate: Rate = OIDC_ROUTE_RATE): Record<string, Route> {
  const limiter = new RateLimiter(rate);
  const serve =
    (body: () => unknown): Route =>
    (req, res) => {
      const wait = limiter.take(req.socket.remoteAddress ?? '');
      if (wait > 0) {
        res.writeHead(429, { 'retry-after': String(Math.ceil(wait / 1000)), 'content-type': 'text/plain' }).end('too many requests\n');
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
        return;
      }
      res
        .writeHead(200, { 'content-type': 'application/json', 'cache-control': `public, max-age=${MAX_AGE_S}` })
        .end(req.method === 'HEAD' ? undefined : JSON.stringify(body()));
    };
  return { [DISCOVERY_PATH]: serve(() => issuer.discovery()), [JWKS_PATH]: serve(() => issuer.jwks()) };
}
