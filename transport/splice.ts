/**
 * Splices a WebSocket and a stream socket together, both ways, with
 * backpressure, so gRPC's HTTP/2 bytes cross the tunnel untouched.
 *
 * The one promise: a drop on either side never throws. Every error is caught
 * here, recorded, and answered by tearing the other side down, so gRPC sees a
 * closed connection (UNAVAILABLE) instead of the process dying. We splice by
 * hand rather than through grpc-js's connection injector, which crashes Node
 * when a WebSocket drops while the server writes.
 */
import type { Socket } from 'node:net';
import { WebSocket, type RawData } from 'ws';

/** Stop reading the socket while this many bytes wait to go out on the WebSocket. */
const WS_HIGH_WATER_BYTES = 1 << 20;
/** After one side closes, give the other this long to flush before destroying it. */
const FLUSH_GRACE_MS = 5_000;

/**
 * Pipes `ws` (already OPEN) and `socket` until both are closed. Resolves with
 * the first error seen, if any, for the caller to log; never rejects.
 */
export function splice(ws: WebSocket, socket: Socket): Promise<Error | undefined> {
  return new Promise((resolve) => {
    let firstError: Error | undefined;
    let open = 2;
    const closedOne = (): void => {
      open -= 1;
      if (open === 0) resolve(firstError);
    };
    const fail = (err: Error): void => {
      firstError ??= err;
      socket.destroy();
      ws.terminate();
    };

    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (!isBinary) return fail(new Error('text frame on a binary tunnel'));
      if (!socket.write(toBuffer(data))) ws.pause();
    });
    socket.on('drain', () => ws.resume());
    socket.on('data', (chunk: Buffer) => sendChunk(ws, socket, chunk));

    ws.on('error', fail);
    socket.on('error', fail);
    ws.once('close', () => {
      // Whatever arrived is already written; end politely, then insist.
      socket.end();
      setTimeout(() => socket.destroy(), FLUSH_GRACE_MS).unref();
      closedOne();
    });
    socket.once('end', () => ws.close(1000));
    socket.once('close', () => {
      if (ws.readyState === WebSocket.OPEN) ws.close(1000);
      else if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
      closedOne();
    });
  });
}

function sendChunk(ws: WebSocket, socket: Socket, chunk: Buffer): void {
  if (ws.readyState !== WebSocket.OPEN) return;
  ws.send(chunk, { binary: true }, () => {
    if (socket.isPaused() && ws.bufferedAmount < WS_HIGH_WATER_BYTES / 2) socket.resume();
  });
  if (ws.bufferedAmount >= WS_HIGH_WATER_BYTES) socket.pause();
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
