/**
 * Agent admission: the join token, or the per-agent credential handed out in
 * Welcome (an HMAC of the agent name under a server secret derived from the
 * token, so it survives restarts). Compared in constant time.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export class AgentAuth {
  private readonly secret: Buffer;

  constructor(private readonly joinToken: string) {
    this.secret = createHmac('sha256', 'runmesh-agent-credential').update(joinToken).digest();
  }

  credentialFor(name: string): string {
    return 'rmc_' + createHmac('sha256', this.secret).update(name).digest('base64url');
  }

  check(name: string, presented: string): boolean {
    return same(presented, this.joinToken) || same(presented, this.credentialFor(name));
  }
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
