/**
 * Reading a job's output from JobService.Logs: once, following one attempt, or
 * following the job across retries until it is terminal. Followers resume a
 * broken stream from the last record seen + 1, so a control-plane restart
 * neither loses nor repeats output.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type Job, LogStream, type LogsRequest, type LogsResponse } from '../proto/gen/runmesh/v1/job.js';
import { type Connection, toRpcError, unary } from './client.js';
import { isTerminal } from './outcome.js';
import { ResumeWindow, type ResumeOptions, DEFAULT_RESUME } from './resume.js';

/** Where output records go. */
export interface LogSink {
  write(stream: LogStream, data: Buffer, record: { attempt: number; seq: number }): void;
}

/** Raw bytes to this process's stdout or stderr, as the job wrote them. */
export const processSink: LogSink = {
  write(stream, data) {
    (stream === LogStream.LOG_STREAM_STDERR ? process.stderr : process.stdout).write(data);
  },
};

/**
 * One JSON line per record on stdout: `{"attempt","seq","stream","text"}`;
 * bytes that are not valid UTF-8 go as `"base64"` instead of `"text"`, so
 * nothing is lost in the conversion.
 */
export const jsonSink: LogSink = {
  write(stream, data, { attempt, seq }) {
    const text = data.toString('utf8');
    const body = Buffer.from(text, 'utf8').equals(data) ? { text } : { base64: data.toString('base64') };
    const name = stream === LogStream.LOG_STREAM_STDERR ? 'stderr' : 'stdout';
    process.stdout.write(`${JSON.stringify({ attempt, seq, stream: name, ...body })}\n`);
  },
};

/** Where a follower is: the attempt it reads (0 = latest, not known yet) and the next record it wants. */
export interface Cursor {
  attempt: number;
  nextSeq: number;
}

export interface FollowOptions extends ResumeOptions {
  /** Pause before asking again when a stream ended but the job goes on. Default 1 s. */
  pollMs: number;
}

export const DEFAULT_FOLLOW: FollowOptions = { ...DEFAULT_RESUME, pollMs: 1_000 };

/** Prints the records that exist now and returns (no follow, no retry). */
export async function printLogs(conn: Connection, id: string, cursor: Cursor, sink: LogSink): Promise<void> {
  await streamOnce(conn, { id, cursor, follow: false, sink, onRecord: () => undefined });
}

/** Follows one attempt until its stream ends, resuming after breaks. */
export async function followAttempt(
  conn: Connection,
  id: string,
  cursor: Cursor,
  sink: LogSink,
  options: FollowOptions = DEFAULT_FOLLOW,
): Promise<void> {
  await getJob(conn, id); // fail fast (NOT_FOUND, UNAVAILABLE) before any retry window opens
  const resume = new ResumeWindow(options);
  for (;;) {
    try {
      return await streamOnce(conn, { id, cursor, follow: true, sink, onRecord: () => resume.progressed() });
    } catch (err) {
      await resume.retryAfter(err);
    }
  }
}

/**
 * Follows the job's output attempt after attempt until the job is terminal,
 * and returns the final job. A new attempt (a retry) is read from its first
 * record; a broken stream is resumed where it stopped.
 */
export async function followJob(
  conn: Connection,
  id: string,
  cursor: Cursor,
  sink: LogSink,
  options: FollowOptions = DEFAULT_FOLLOW,
): Promise<Job> {
  await getJob(conn, id);
  const resume = new ResumeWindow(options);
  for (;;) {
    try {
      await streamOnce(conn, { id, cursor, follow: true, sink, onRecord: () => resume.progressed() });
      const job = await getJob(conn, id);
      resume.progressed();
      if (isTerminal(job.state)) return job;
      if (job.attempt > cursor.attempt) advance(cursor, job.attempt);
      else await sleep(options.pollMs);
    } catch (err) {
      await resume.retryAfter(err);
    }
  }
}

function advance(cursor: Cursor, attempt: number): void {
  // Before the first record the cursor still holds the caller's --from; keep it for the first attempt read.
  if (cursor.attempt !== 0) cursor.nextSeq = 0;
  cursor.attempt = attempt;
}

async function getJob(conn: Connection, id: string): Promise<Job> {
  const res = await unary(conn, 'JobService.Get', conn.jobs.get.bind(conn.jobs), { id });
  if (!res.job) throw new Error(`JobService.Get returned no job for ${id}`);
  return res.job;
}

/** One Logs call of job `id`, from `cursor`; `onRecord` hears of every record received, new or not. */
interface LogsCall {
  id: string;
  cursor: Cursor;
  follow: boolean;
  sink: LogSink;
  onRecord: () => void;
}

/** One Logs call: writes every new record to `sink` and moves `cursor` along. */
async function streamOnce(conn: Connection, { id, cursor, follow, sink, onRecord }: LogsCall): Promise<void> {
  const request: LogsRequest = { id, attempt: cursor.attempt, fromSeq: cursor.nextSeq, follow };
  const stream = conn.jobs.logs(request);
  try {
    for await (const record of stream as AsyncIterable<LogsResponse>) {
      if (accept(cursor, record)) sink.write(record.stream, record.data, record);
      onRecord();
    }
  } catch (err) {
    throw toRpcError(err, conn.server, 'JobService.Logs');
  } finally {
    stream.cancel();
  }
}

/** Moves the cursor for a record; false for a record already written (a server re-sending after resume). */
function accept(cursor: Cursor, record: LogsResponse): boolean {
  if (record.attempt === cursor.attempt && cursor.attempt !== 0 && record.seq < cursor.nextSeq) return false;
  cursor.attempt = record.attempt;
  cursor.nextSeq = record.seq + 1;
  return true;
}
