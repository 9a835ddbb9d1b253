/**
 * The agent's client for AgentService, with one fast path in its request
 * serializer. A LogChunk carries up to 64 KiB of output, and the generated
 * encoder moves it through a writer that starts small and doubles (a copy per
 * doubling), shifts it for each length prefix wider than a byte (two nested
 * messages), slices it out, then copies it into a Buffer: seven copies of
 * every log byte, the largest CPU cost of a log stream on the agent. Here the
 * chunk's small fields go through the generated encoder and its data is
 * copied once, into a buffer of the exact size. The bytes are the same as the
 * generated encoder's (the tests check that); every other message uses it as is.
 */
import { makeGenericClientConstructor } from '@grpc/grpc-js';
import { type AgentServiceClient, AgentServiceService, ConnectRequest, LogChunk } from '../../proto/gen/runmesh/v1/agent.js';

/** ConnectRequest field `log_chunk` (4) and LogChunk field `data` (5), both length-delimited. */
const LOG_CHUNK_TAG = (4 << 3) | 2;
const DATA_TAG = (5 << 3) | 2;
const NO_DATA = Buffer.alloc(0);

export function serializeConnectRequest(m: ConnectRequest): Buffer {
  if (m.msg?.$case !== 'logChunk' || m.msg.value.data.length === 0) return Buffer.from(ConnectRequest.encode(m).finish());
  const chunk = m.msg.value;
  const head = LogChunk.encode({ ...chunk, data: NO_DATA }).finish(); // fields 1-4; empty bytes are not written
  const size = chunk.data.length;
  const inner = head.length + 1 + varintSize(size) + size;
  const out = Buffer.allocUnsafe(1 + varintSize(inner) + inner);
  out[0] = LOG_CHUNK_TAG;
  let at = writeVarint(out, 1, inner);
  out.set(head, at);
  at += head.length;
  out[at++] = DATA_TAG;
  at = writeVarint(out, at, size);
  out.set(chunk.data, at);
  return out;
}

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n >>>= 7;
    size++;
  }
  return size;
}

function writeVarint(out: Buffer, at: number, n: number): number {
  while (n >= 0x80) {
    out[at++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  out[at++] = n;
  return at;
}

/** AgentServiceClient with `serializeConnectRequest`. */
export const FastAgentServiceClient = makeGenericClientConstructor(
  { connect: { ...AgentServiceService.connect, requestSerialize: serializeConnectRequest } },
  'runmesh.v1.AgentService',
) as unknown as typeof AgentServiceClient;
