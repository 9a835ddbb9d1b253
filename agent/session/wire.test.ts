/** The agent's ConnectRequest serializer writes exactly the generated encoder's bytes, for every message. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConnectRequest } from '../../proto/gen/runmesh/v1/agent.js';
import { serializeConnectRequest } from './wire.js';

const generic = (m: ConnectRequest): Buffer => Buffer.from(ConnectRequest.encode(m).finish());

const logChunk = fc.record({
  jobId: fc.string({ maxLength: 60 }),
  attempt: fc.nat({ max: 0xffffffff }),
  seq: fc.nat({ max: 0xffffffff }),
  stream: fc.integer({ min: 0, max: 2 }),
  // Lengths across every varint width a chunk can have: 1, 2 and 3 bytes (64 KiB records), and more.
  data: fc
    .oneof(
      fc.uint8Array({ maxLength: 300 }),
      fc.integer({ min: 16_000, max: 2_200_000 }).map((n) => new Uint8Array(n).fill(n & 0xff)),
    )
    .map((a) => Buffer.from(a)),
});

describe('serializeConnectRequest', () => {
  it('a LogChunk: the same bytes as the generated encoder, and it decodes back whole', () => {
    fc.assert(
      fc.property(logChunk, (value) => {
        const m: ConnectRequest = { msg: { $case: 'logChunk', value } };
        const fast = serializeConnectRequest(m);
        expect(fast.equals(generic(m))).toBe(true);
        const back = ConnectRequest.decode(fast).msg;
        expect(back?.$case).toBe('logChunk');
        const { data, ...fields } = back!.value as typeof value;
        expect(fields).toEqual({ jobId: value.jobId, attempt: value.attempt, seq: value.seq, stream: value.stream });
        expect(Buffer.from(data).equals(value.data)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('every other message goes through the generated encoder unchanged', () => {
    const messages: ConnectRequest[] = [
      { msg: { $case: 'heartbeat', value: { draining: false, load: 0.5, unhealthy: '' } } },
      { msg: { $case: 'jobUpdate', value: { jobId: 'j_0123456789', attempt: 2, state: 3 } } },
      { msg: undefined },
    ];
    for (const m of messages) expect(serializeConnectRequest(m).equals(generic(m))).toBe(true);
  });
});
