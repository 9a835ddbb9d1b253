/**
 * A gRPC server for transport tests: the standard health service plus a tiny
 * raw-bytes service (no proto): Echo (bidi) and Stream (server sends N chunks).
 */
import { once } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation, service as healthService } from 'grpc-health-check';
import { KEEPALIVE_SERVER_OPTIONS } from '../keepalive.js';

const identity = (b: Buffer): Buffer => b;

function method(name: string, requestStream: boolean, responseStream: boolean): grpc.MethodDefinition<Buffer, Buffer> {
  return {
    path: `/runmesh.test.Bytes/${name}`,
    requestStream,
    responseStream,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  };
}

const ECHO = method('Echo', true, true);
const STREAM = method('Stream', false, true);
const bytesService: grpc.ServiceDefinition = { echo: ECHO, stream: STREAM };

/** Longest a Stream handler waits for the client to read before giving up. */
const DRAIN_WAIT_MS = 30_000;

export function startTestServer(): grpc.Server {
  const server = new grpc.Server({ ...KEEPALIVE_SERVER_OPTIONS });
  new HealthImplementation({ '': 'SERVING' }).addToServer(server);
  server.addService(bytesService, {
    echo: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      call.on('data', (b: Buffer) => {
        if (!call.write(b)) call.pause();
      });
      call.on('drain', () => call.resume());
      call.on('end', () => call.end());
      call.on('error', () => call.destroy());
    },
    stream: (call: grpc.ServerWritableStream<Buffer, Buffer>) => void streamChunks(call),
  });
  return server;
}

/** Request: count (u32) chunks of size (u32) bytes; stops when the call is cancelled. */
async function streamChunks(call: grpc.ServerWritableStream<Buffer, Buffer>): Promise<void> {
  const count = call.request.readUInt32BE(0);
  const chunk = Buffer.alloc(call.request.readUInt32BE(4), 0x5a);
  let stopped = false;
  call.on('cancelled', () => (stopped = true));
  call.on('error', () => (stopped = true));
  for (let i = 0; i < count && !stopped && !call.cancelled; i++) {
    if (call.write(chunk)) continue;
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), DRAIN_WAIT_MS);
    await Promise.race([once(call, 'drain', { signal: ac.signal }), once(call, 'cancelled', { signal: ac.signal })]).catch(
      () => (stopped = true),
    );
    clearTimeout(timer);
    ac.abort();
  }
  if (!stopped && !call.cancelled) call.end();
}

export function healthCheck(client: grpc.Client, deadlineMs = 10_000, waitForReady = false): Promise<string> {
  const check = healthService['Check'];
  if (check === undefined) throw new Error('health service has no Check method');
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      check.path,
      check.requestSerialize,
      check.responseDeserialize,
      { service: '' },
      new grpc.Metadata({ waitForReady }),
      { deadline: Date.now() + deadlineMs },
      (err, res) => (err ? reject(err) : resolve((res as { status: string }).status)),
    );
  });
}

export function openEcho(client: grpc.Client): grpc.ClientDuplexStream<Buffer, Buffer> {
  return client.makeBidiStreamRequest(ECHO.path, identity, identity, new grpc.Metadata(), { deadline: Date.now() + 60_000 });
}

export function openStream(client: grpc.Client, count: number, size: number): grpc.ClientReadableStream<Buffer> {
  const request = Buffer.alloc(8);
  request.writeUInt32BE(count, 0);
  request.writeUInt32BE(size, 4);
  return client.makeServerStreamRequest(STREAM.path, identity, identity, request, new grpc.Metadata(), {
    deadline: Date.now() + 60_000,
  });
}
