/**
 * `POST /hooks/NAME` on the HTTP port: an inbound webhook submits its hook's
 * template, its parameters taken from the JSON payload. No token: the request
 * is authenticated by its signature under the hook's secret (signature.ts).
 *
 * In order, each refusal cheap before the next costs more: 405 not a POST;
 * 413 a declared length over the limit; 429 the sender's address over its
 * rate; 404 no inbound hook of that name; 413 a body over the limit (counted
 * while it is read, never buffered past it); 401 a bad or missing signature;
 * 429 the hook's own rate spent (by signed deliveries only, so a flood of
 * unsigned ones cannot starve the code host's); 409 a
 * timestamp (`X-Runmesh-Timestamp`, signed) outside ±5 min, or a delivery id
 * (`X-GitHub-Delivery` or `X-Runmesh-Delivery`) seen within the replay
 * window; 400 no delivery id, or a body that is not JSON; 422 a mapped field
 * missing or a parameter the template refuses (named); 202 with the job ids.
 * A GitHub `ping` event is answered 200 once its signature checks.
 */
import { NamedError } from '../../proto/cause.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Job } from '../../proto/gen/runmesh/v1/job.js';
import type { Hook } from '../../proto/gen/runmesh/v1/hook.js';
import type { AuditSink } from '../auth/audit-sink.js';
import { RateLimiter, type Rate } from '../auth/rate-limit.js';
import { isValidation } from '../jobs/errors.js';
import type { HookStore } from './hook-store.js';
import { mapParams, MissingFieldError } from './param-map.js';
import type { ReplayWindow } from './replay.js';
import { HEADERS, signedContent, verify } from './signature.js';

export const HOOK_PATH = '/hooks/';

/** HTTP routes authenticated by a signature instead of a token (the console's are ROUTE_METHODS), with the header that carries it. */
export const SIGNED_ROUTES: ReadonlyArray<readonly [string, string, string]> = [['POST', '/hooks/:name', 'X-Hub-Signature-256']];

export interface InboundLimits {
  /** Body bytes, at most. Default 1 MiB. */
  maxBodyBytes: number;
  /** Signed deliveries per hook. Default 10/s, burst 50. */
  rate: Rate;
  /** Requests per client address, before anything is checked. Default 20/s, burst 100. */
  perAddress: Rate;
  /** How far a signed timestamp may be from now. Default 5 min. */
  skewMs: number;
}

export const DEFAULT_INBOUND: InboundLimits = {
  maxBodyBytes: 1 << 20,
  rate: { perSecond: 10, burst: 50 },
  perAddress: { perSecond: 20, burst: 100 },
  skewMs: 5 * 60_000,
};

interface Rates {
  perHook: RateLimiter;
  perAddress: RateLimiter;
}

export interface InboundDeps {
  hooks: HookStore;
  replay: ReplayWindow;
  /** Fills the hook's template in with `params` and submits it in the hook's tenant. */
  submit(hook: Hook, params: Record<string, string>): Promise<Job[]>;
  audit: AuditSink;
  logger: Logger;
  limits?: InboundLimits;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const DELIVERY_ID = /^[\x21-\x7e]{1,200}$/;

/** A delivery refused with an HTTP status; `audited` false for the cheap refusals before the signature is checked. */
class Refusal extends NamedError {
  constructor(
    readonly code: number,
    message: string,
    readonly audited = true,
  ) {
    super(message);
  }
}

/** The route for `/hooks/` (a prefix route of the HTTP server). */
export function inboundRoute(d: InboundDeps): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const limits = d.limits ?? DEFAULT_INBOUND;
  const rates: Rates = { perHook: new RateLimiter(limits.rate), perAddress: new RateLimiter(limits.perAddress) };
  const log = d.logger.child({ part: 'hooks-in' });
  return async (req, res) => {
    const name = (req.url ?? '').split('?')[0]!.slice(HOOK_PATH.length);
    const from = req.socket.remoteAddress ?? '';
    try {
      const accepted = await receive(d, limits, rates, name, req);
      d.audit.record({ actor: `hook:${name}`, method: 'POST /hooks/:name', target: accepted.target, from, result: 'OK' });
      reply(res, accepted.code, accepted.body);
    } catch (err) {
      const r = err instanceof Refusal ? err : new Refusal(503, 'the delivery could not be handled now; retry');
      if (!(err instanceof Refusal)) log.error({ err, hook: name }, 'inbound hook failed');
      if (r.audited)
        d.audit.record({ actor: `hook:${name}`, method: 'POST /hooks/:name', target: `hook ${name}`, from, result: `HTTP ${r.code}` });
      reply(res, r.code, { error: r.message });
      if (r.code === 413) res.once('finish', () => drainThenClose(req));
    }
  };
}

async function receive(
  d: InboundDeps,
  limits: InboundLimits,
  rates: Rates,
  name: string,
  req: IncomingMessage,
): Promise<{ code: number; body: unknown; target: string }> {
  if (req.method !== 'POST') throw new Refusal(405, 'POST only', false);
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limits.maxBodyBytes) throw new Refusal(413, `body over ${limits.maxBodyBytes} bytes`, false);
  if (!NAME.test(name)) throw new Refusal(404, 'no such hook', false);
  const waitAddress = rates.perAddress.take(req.socket.remoteAddress ?? '');
  if (waitAddress > 0) throw new Refusal(429, `too many requests from this address; retry in ${waitAddress} ms`, false);
  const found = await d.hooks.open(name);
  if (!found || !found.hook.template) throw new Refusal(404, 'no such hook', false);
  const body = await readBody(req, limits.maxBodyBytes);
  const timestamp = header(req, HEADERS.timestamp);
  if (!verify(found.secret.reveal(), signedContent(body, timestamp), header(req, HEADERS.signature)))
    throw new Refusal(401, `bad or missing ${HEADERS.signature} (sha256=HEX, the HMAC-SHA256 of the body under the hook's secret)`);
  const wait = rates.perHook.take(name);
  if (wait > 0) throw new Refusal(429, `hook ${name} is over its rate; retry in ${wait} ms`, false);
  if (timestamp !== undefined && !(Math.abs(Date.now() - Number(timestamp) * 1000) <= limits.skewMs))
    throw new Refusal(409, `${HEADERS.timestamp} is outside the replay window (±${limits.skewMs / 1000} s)`);
  if (header(req, 'x-github-event') === 'ping') return { code: 200, body: { ok: true }, target: `hook ${name}: ping` };
  const id = header(req, HEADERS.delivery) ?? header(req, HEADERS.githubDelivery);
  if (!id || !DELIVERY_ID.test(id)) throw new Refusal(400, `missing or bad ${HEADERS.githubDelivery} or ${HEADERS.delivery}`);
  let payload: unknown;
  try {
    payload = JSON.parse(body.toString('utf8'));
  } catch {
    throw new Refusal(400, 'the body is not JSON');
  }
  const claim = await d.replay.claim(name, id);
  if (claim === 'replay') throw new Refusal(409, `delivery ${id} was already received`);
  if (claim === 'full') throw new Refusal(429, `hook ${name} has too many deliveries within its replay window`);
  try {
    const jobs = await d.submit(found.hook, mapParams(found.hook.paramMap, payload));
    const ids = jobs.map((j) => j.id);
    const pipeline = jobs[0]?.pipelineId || undefined;
    return { code: 202, body: { job_id: ids[0], job_ids: ids, pipeline_id: pipeline }, target: `hook ${name}: ${ids.join(',')}` };
  } catch (err) {
    await d.replay.release(name, id);
    if (err instanceof MissingFieldError || isValidation(err)) throw new Refusal(422, (err as Error).message);
    throw err;
  }
}

const header = (req: IncomingMessage, name: string): string | undefined => {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
};

function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        req.pause();
        reject(new Refusal(413, `body over ${max} bytes`, false));
      } else chunks.push(c);
    });
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

/**
 * After a 413 the rest of the body is read and dropped, up to a point, and
 * the connection is closed only past it: closing a socket with unread bytes
 * makes the kernel reset it, and the sender would lose the 413 with it
 * (which is also why the answer does not say `connection: close`: Node would
 * close the socket as soon as the answer is written).
 */
const LINGER = { ms: 2000, bytes: 8 << 20 };

function drainThenClose(req: IncomingMessage): void {
  let left = LINGER.bytes;
  const timer = setTimeout(() => req.destroy(), LINGER.ms).unref();
  req.on('data', (c: Buffer) => {
    left -= c.length;
    if (left < 0) req.destroy();
  });
  req.once('end', () => clearTimeout(timer));
  req.once('close', () => clearTimeout(timer));
  req.resume();
}

function reply(res: ServerResponse, code: number, body: unknown): void {
  if (res.headersSent) return void res.end();
  res.writeHead(code, { 'content-type': 'application/json' }).end(`${JSON.stringify(body)}\n`);
}
