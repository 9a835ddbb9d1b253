/**
 * Reading and answering the console's HTTP requests: bounded JSON bodies, JSON
 * answers, and errors mapped from the same place the gRPC services map them
 * (api/status.ts), so a refusal reads the same in the browser as in the CLI.
 */
import { status as Status } from '@grpc/grpc-js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { NamedError } from '../../proto/cause.js';
import { ApiError, toServiceError } from '../api/status.js';

/** The largest request body the console reads (a sign-in, a filter): anything bigger is refused with 413. */
export const MAX_BODY_BYTES = 64 * 1024;

/** gRPC status → HTTP status. */
const HTTP_OF: Partial<Record<Status, number>> = {
  [Status.INVALID_ARGUMENT]: 400,
  [Status.UNAUTHENTICATED]: 401,
  [Status.PERMISSION_DENIED]: 403,
  [Status.NOT_FOUND]: 404,
  [Status.ALREADY_EXISTS]: 409,
  [Status.ABORTED]: 409,
  [Status.FAILED_PRECONDITION]: 409,
  [Status.RESOURCE_EXHAUSTED]: 429,
  [Status.UNAVAILABLE]: 503,
};

/** Headers on every console answer: nothing is framed, sniffed or loaded from elsewhere. */
export const SAFE_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
};

export function sendJson(res: ServerResponse, code: number, body: unknown, headers: Record<string, string | string[]> = {}): void {
  if (res.headersSent) return void res.end();
  const text = JSON.stringify(body, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  res
    .writeHead(code, { ...SAFE_HEADERS, 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers })
    .end(text);
}

/** Answers `err` with its HTTP status and the service's message; unknown errors are logged and hidden. */
export function sendError(res: ServerResponse, err: unknown, log: Logger): void {
  if (err instanceof BodyTooLargeError) return sendJson(res, 413, { error: err.message, code: 'BODY_TOO_LARGE' });
  const e = toServiceError(err, log);
  const code = HTTP_OF[e.code ?? Status.INTERNAL] ?? 500;
  const retry = e.metadata?.get('retry-after-ms')[0];
  const headers: Record<string, string> = retry ? { 'retry-after': String(Math.ceil(Number(retry) / 1000)) } : {};
  sendJson(res, code, { error: e.details ?? 'internal error', code: Status[e.code ?? Status.INTERNAL] }, headers);
}

/** The request's JSON body (an object), at most MAX_BODY_BYTES; throws INVALID_ARGUMENT or a 413 ApiError. */
export async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_BODY_BYTES) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw tooLarge();
    chunks.push(chunk);
  }
  if (size === 0) return {};
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new ApiError(Status.INVALID_ARGUMENT, 'body: not JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new ApiError(Status.INVALID_ARGUMENT, 'body: not a JSON object');
  return body as Record<string, unknown>;
}

/** A request body over MAX_BODY_BYTES (answered 413). */
export class BodyTooLargeError extends NamedError {}

const tooLarge = (): BodyTooLargeError => new BodyTooLargeError(`body: larger than ${MAX_BODY_BYTES} bytes`);

/** The client's address without its port, for rate limits and the audit trail. */
export const clientAddress = (req: IncomingMessage): string => req.socket.remoteAddress ?? '';
