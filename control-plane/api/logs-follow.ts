/**
 * The Logs RPC's loop: find the attempt (waiting for the first assignment when
 * following a queued job), stream its records from `from_seq`, and with
 * `follow` keep going until the attempt is over and everything was sent. A log
 * held by another peer is read from it over PeerService.
 */
import type { Job, LogsRequest, LogsResponse } from '../../proto/gen/runmesh/v1/job.js';
import type { JobRecord } from '../jobs/record.js';
import { isActive, isTerminal } from '../jobs/state.js';
import type { JobRepo } from '../jobs/repo.js';
import type { JobTracker } from '../jobs/tracker.js';
import type { LogStore } from '../logs/log-store.js';
import type { LogRecord } from '../mesh/peer-service.js';
import { invalid, notFound } from './status.js';

/** Where to read an attempt's log when another peer holds it; undefined means here. */
export type RemoteLogs = (record: JobRecord, attempt: number, fromSeq: number, follow: boolean, signal: AbortSignal) => AsyncIterable<LogRecord> | undefined;

export interface FollowArgs {
  id: string;
  request: LogsRequest;
  repo: JobRepo;
  tracker: JobTracker;
  logs: LogStore;
  remote: RemoteLogs;
  signal: AbortSignal;
  /** Returns false when the client's buffer is full. */
  write(m: LogsResponse): boolean;
  drained(): Promise<void>;
}

async function currentRecord(a: Pick<FollowArgs, 'tracker' | 'repo' | 'id'>): Promise<JobRecord> {
  const live = a.tracker.get(a.id);
  if (live) return live.record;
  const v = await a.repo.get(a.id);
  if (!v) throw notFound(`job ${a.id}`);
  return v.record;
}

/** Waits until the job has an attempt (or ends without one); returns its latest state. */
function untilAssigned(a: FollowArgs): Promise<JobRecord | undefined> {
  return new Promise((resolve) => {
    const finish = (r: JobRecord | undefined): void => {
      unsubscribe();
      a.signal.removeEventListener('abort', onAbort);
      resolve(r);
    };
    const ready = (j: Job): boolean => j.attempt > 0 || isTerminal(j.state);
    const unsubscribe = a.tracker.subscribe((v) => {
      if (v.record.job.id === a.id && ready(v.record.job)) finish(v.record);
    });
    const onAbort = (): void => finish(undefined);
    a.signal.addEventListener('abort', onAbort, { once: true });
    void currentRecord(a).then((r) => ready(r.job) && finish(r));
  });
}

/**
 * The records of an attempt held on this peer, from `fromSeq`; with `follow`,
 * until the attempt is over and all it holds was yielded.
 */
export async function* readLocalLog(tracker: JobTracker, logs: LogStore, jobId: string, attempt: number, fromSeq: number, follow: boolean, signal: AbortSignal): AsyncGenerator<LogRecord> {
  const file = await logs.file(jobId, attempt);
  // Wake the reader as soon as the attempt ends, rather than at its next poll.
  const unsubscribe = tracker.subscribe((v) => {
    if (v.record.job.id === jobId) file.emit('append', Number.MAX_SAFE_INTEGER);
  });
  const over = (): 'more' | 'done' => {
    if (!follow) return 'done';
    const live = tracker.get(jobId)?.record.job;
    return live && live.attempt === attempt && isActive(live.state) ? 'more' : 'done';
  };
  try {
    yield* logs.read(jobId, attempt, fromSeq, over, signal);
  } finally {
    unsubscribe();
  }
}

export async function followLogs(a: FollowArgs): Promise<void> {
  let record = await currentRecord(a);
  if (a.request.attempt > Math.max(record.job.attempt, 0)) throw invalid('attempt', `job ${a.id} has ${record.job.attempt} attempt(s)`);
  if (record.job.attempt === 0) {
    if (!a.request.follow) return;
    const assigned = await untilAssigned(a);
    if (!assigned || assigned.job.attempt === 0) return;
    record = assigned;
  }
  const attempt = a.request.attempt || record.job.attempt;
  const { fromSeq, follow } = a.request;
  const source = a.remote(record, attempt, fromSeq, follow, a.signal) ?? readLocalLog(a.tracker, a.logs, a.id, attempt, fromSeq, follow, a.signal);
  for await (const r of source) {
    const data = Buffer.isBuffer(r.data) ? r.data : Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength);
    if (!a.write({ attempt, seq: r.seq, stream: r.stream, data })) await a.drained();
  }
}
