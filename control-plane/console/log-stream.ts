/**
 * A job's log as server-sent events, followed while it grows: the JobService's
 * own follow loop (api/logs-follow.ts), so a log held by another peer is read
 * from it as the CLI's `runmesh logs -f` reads it. Each record becomes one
 * `log` event of text, decoded per stream (a character split across records
 * is held back until its end arrives); `end` says the attempt is over.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import type { Logger } from 'pino';
import { LogStream } from '../../proto/gen/runmesh/v1/job.js';
import { followLogs, type FollowArgs } from '../api/logs-follow.js';
import { toServiceError } from '../api/status.js';
import { openEventStream } from './sse.js';
import type { LogEvent } from './wire.js';

export type LogSource = Pick<FollowArgs, 'repo' | 'tracker' | 'logs' | 'locator' | 'retention'>;

/** Past this much unsent, the follower waits for the client to read. */
const HIGH_WATER = 256 * 1024;

export async function streamLog(
  source: LogSource,
  id: string,
  q: URLSearchParams,
  req: IncomingMessage,
  res: ServerResponse,
  log: Logger,
): Promise<void> {
  // A reconnecting EventSource says where it was ("attempt:seq" of the last event it got).
  const [lastAttempt, lastSeq] = String(req.headers['last-event-id'] ?? '').split(':');
  const resumed = lastSeq !== undefined && /^\d+$/.test(lastSeq) && /^\d+$/.test(lastAttempt ?? '');
  const attempt = resumed ? Number(lastAttempt) : Number(q.get('attempt') ?? 0);
  const fromSeq = resumed ? Number(lastSeq) + 1 : Number(q.get('from') ?? 0);
  if (!Number.isSafeInteger(attempt) || attempt < 0 || !Number.isSafeInteger(fromSeq) || fromSeq < 0) {
    res.writeHead(400, { 'content-type': 'text/plain' }).end('attempt and from are whole numbers\n');
    return;
  }
  const stream = openEventStream(req, res);
  const abort = new AbortController();
  stream.onClose(() => abort.abort(new Error('client went away')));
  const decoders = new Map<number, StringDecoder>();
  try {
    await followLogs({
      ...source,
      id,
      request: { id, attempt, fromSeq, follow: true },
      signal: abort.signal,
      write: (m) => {
        const d = decoders.get(m.stream) ?? new StringDecoder('utf8');
        decoders.set(m.stream, d);
        const event: LogEvent = {
          attempt: m.attempt,
          seq: m.seq,
          stream: m.stream === LogStream.LOG_STREAM_STDERR ? 'stderr' : 'stdout',
          text: d.write(m.data),
        };
        stream.send('log', event, `${m.attempt}:${m.seq}`);
        return res.writableLength < HIGH_WATER;
      },
      drained: () =>
        new Promise<void>((resolve) => {
          const done = (): void => {
            res.off('drain', done);
            abort.signal.removeEventListener('abort', done);
            resolve();
          };
          res.on('drain', done);
          abort.signal.addEventListener('abort', done, { once: true });
        }),
    });
    stream.send('end', {});
  } catch (err) {
    if (!abort.signal.aborted) stream.send('failed', { error: toServiceError(err, log).details });
  } finally {
    stream.close();
  }
}
