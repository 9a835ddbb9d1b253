/** Server-sent events: the headers, one event, and a client that is cut off when it falls too far behind. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SAFE_HEADERS } from './http-io.js';

/** A client with this much unsent is too slow: it is closed, and its EventSource reconnects and re-reads. */
const MAX_BUFFERED = 4 * 1024 * 1024;
/** A comment line this often keeps proxies from closing an idle stream. */
const KEEPALIVE_MS = 15_000;

export interface EventStream {
  /** False (and the stream closed) when the client could not keep up. */
  send(event: string, data: unknown, id?: string): boolean;
  readonly closed: boolean;
  /** Called once, when the client goes away or the stream is closed. */
  onClose(f: () => void): void;
  close(): void;
}

export function openEventStream(req: IncomingMessage, res: ServerResponse): EventStream {
  res.writeHead(200, {
    ...SAFE_HEADERS,
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    'x-accel-buffering': 'no',
  });
  res.write('retry: 2000\n\n');
  let closed = false;
  const closers: Array<() => void> = [];
  const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
  const finish = (): void => {
    if (closed) return;
    closed = true;
    clearInterval(keepalive);
    for (const f of closers) f();
    res.end();
  };
  req.on('close', finish);
  res.on('error', finish);
  return {
    get closed() {
      return closed;
    },
    send(event, data, id) {
      if (closed) return false;
      if (res.writableLength > MAX_BUFFERED) {
        finish();
        return false;
      }
      const json = JSON.stringify(data, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
      res.write(`${id ? `id: ${id}\n` : ''}event: ${event}\ndata: ${json}\n\n`);
      return true;
    },
    onClose: (f) => void closers.push(f),
    close: finish,
  };
}
