import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { rpcMessage } from './errors.js';

describe('rpcMessage', () => {
  it("says a server's own UNAVAILABLE reason, and 'cannot reach' only when no server answered", () => {
    const held = rpcMessage(
      status.UNAVAILABLE,
      'the log of j_1 attempt 1 is held only by peer p1, which is not live',
      'h:1',
      'JobService.Logs',
    );
    expect(held).toBe(
      'the control plane at h:1 could not answer: the log of j_1 attempt 1 is held only by peer p1, which is not live (UNAVAILABLE; try again)',
    );
    for (const local of [
      'No connection established. Last error: connect ECONNREFUSED 127.0.0.1:1',
      'Connection dropped',
      'Name resolution failed for target dns:nowhere:1',
      '',
    ])
      expect(rpcMessage(status.UNAVAILABLE, local, 'h:1', 'JobService.Get')).toMatch(/^cannot reach the control plane at h:1 /);
  });
});
