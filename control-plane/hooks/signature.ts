/**
 * Webhook signatures, GitHub's scheme: `X-Hub-Signature-256: sha256=HEX`,
 * the HMAC-SHA256 of the signed content under the hook's secret. GitHub signs
 * the raw body; runmesh's own deliveries also carry `X-Runmesh-Timestamp`
 * (unix seconds) and sign `TIMESTAMP.BODY`, so a captured delivery cannot be
 * replayed once it falls out of the window. Compared in constant time.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const HEADERS = {
  signature: 'x-hub-signature-256',
  timestamp: 'x-runmesh-timestamp',
  delivery: 'x-runmesh-delivery',
  githubDelivery: 'x-github-delivery',
  event: 'x-runmesh-event',
} as const;

/** What is signed: the body, or `TIMESTAMP.BODY` when a timestamp is sent. */
export function signedContent(body: Buffer, timestamp?: string): Buffer {
  return timestamp === undefined ? body : Buffer.concat([Buffer.from(`${timestamp}.`), body]);
}

/** The header value for `content` under `secret`: `sha256=HEX`. */
export function sign(secret: string, content: Buffer): string {
  return `sha256=${createHmac('sha256', secret).update(content).digest('hex')}`;
}

/** True when `header` is `sha256=HEX` of `content` under `secret`. */
export function verify(secret: string, content: Buffer, header: string | undefined): boolean {
  if (!header?.startsWith('sha256=')) return false;
  const got = Buffer.from(header.slice('sha256='.length), 'hex');
  const want = createHmac('sha256', secret).update(content).digest();
  return got.length === want.length && timingSafeEqual(got, want);
}
