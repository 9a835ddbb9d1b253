/**
 * The Logs RPC's loop: find the attempt (waiting for the first assignment when
 * following a queued job), stream its records from `from_seq`, and with
 * `follow` keep going until the attempt is over and everything was sent. A log
 * held by another peer is read from it over PeerService.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Job, LogsRequest, LogsResponse } from '../../proto/gen/runmesh/v1/job.js';
import type { JobRecord } from '../jobs/record.js';
import { isActive, isTerminal } from '../jobs/state.js';
import type { JobRepo } from '../jobs/repo.js';
import type { JobTracker } from '../jobs/tracker.js';
import type { LogRead, LogRecord, LogStore } from '../logs/log-store.js';
import { isRefusal } from '../../transport/retry.js';
import { invalid, jobNotFound, type Retention } from './status.js';

/** Where an attempt's log is: this peer, or other peers to read it from. */
export interface LogLocator {
  /**
   * True when this peer is where the attempt's log is written (running: it
   * holds the agent's stream) or kept (finished: it holds a sealed copy), or
   * when no peer is.
   */
  here(record: JobRecord, attempt: number): boolean;
  /** Reads the attempt's log from the peers that have it (fails when none is reachable). */
  read(record: JobRecord, read: LogRead, signal: AbortSignal): AsyncIterable<LogRecord>;
}

/** How long a follower keeps trying to reach an attempt's log (its agent moving to another peer) before it gives up. */
const FOLLOW_RETRY_MS = 60_000;
/** Pause before looking again for where a followed log went. */
const FOLLOW_PAUSE_MS = 200;

export interface FollowArgs {
  id: string;
  request: LogsRequest;
  repo: JobRepo;
  tracker: JobTracker;
  logs: LogStore;
  locator: LogLocator;
  /** For the not-found message of a job deleted after the retention. */
  retention: Retention;
  signal: AbortSignal;
  /** Returns false when the client's buffer is full. */
  write(m: LogsResponse): boolean;
  drained(): Promise<void>;
}

async function currentRecord(a: Pick<FollowArgs, 'tracker' | 'repo' | 'id' | 'retention'>): Promise<JobRecord> {
  const live = a.tracker.get(a.id);
  if (live) return live.record;
  const v = await a.repo.get(a.id);
  if (!v) throw jobNotFound(a.id, a.retention);
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

/** What reading a log held on this peer needs. */
export interface LocalLogSource {
  tracker: JobTracker;
  logs: LogStore;
  /** False once the attempt's log is no longer written here (its agent moved to another peer). */
  stay: (live: JobRecord) => boolean;
}

/**
 * The records of an attempt held on this peer, from `fromSeq`; with `follow`,
 * until the attempt is over and all it holds was yielded, or until `stay`
 * says its log is no longer written here.
 */
export async function* readLocalLog(source: LocalLogSource, read: LogRead, signal: AbortSignal): AsyncGenerator<LogRecord> {
  const { tracker, logs, stay } = source;
  const { jobId, attempt, fromSeq, follow } = read;
  const file = await logs.file(jobId, attempt);
  // Wake the reader as soon as the job changes (it may have ended), rather than at its next look.
  const unsubscribe = tracker.subscribe((v) => {
    if (v.record.job.id === jobId) file.wakeReaders();
  });
  const over = (): 'more' | 'done' => {
    if (!follow) return 'done';
    const live = tracker.get(jobId)?.record;
    return live && live.job.attempt === attempt && isActive(live.job.state) && stay(live) ? 'more' : 'done';
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
  const { follow } = a.request;
  let next = a.request.fromSeq;
  let failingSince: number | undefined;
  // One pass per place the log is read from; a followed attempt whose agent moves to another peer
  // (or whose peer dies) is picked up where it went, from the next record not yet sent.
  for (let pass = 0; ; pass++) {
    if (pass > 0) await sleep(FOLLOW_PAUSE_MS, undefined, { signal: a.signal }).catch(() => undefined); // ends early on abort
    const here = a.locator.here(record, attempt);
    const sent = next;
    try {
      const read: LogRead = { jobId: a.id, attempt, fromSeq: next, follow };
      const source = here
        ? readLocalLog({ tracker: a.tracker, logs: a.logs, stay: (live) => a.locator.here(live, attempt) }, read, a.signal)
        : a.locator.read(record, read, a.signal);
      for await (const r of source) {
        if (r.seq < next) continue;
        const data = Buffer.isBuffer(r.data) ? r.data : Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength);
        if (!a.write({ attempt, seq: r.seq, stream: r.stream, data })) await a.drained();
        next = r.seq + 1;
      }
    } catch (err) {
      // Like an agent, a follower retries any failure but a refusal (transport/retry.ts), within the window.
      if (!follow || a.signal.aborted || isRefusal(err)) throw err;
      failingSince ??= Date.now();
      if (Date.now() - failingSince > FOLLOW_RETRY_MS) throw err;
    }
    if (next > sent) failingSince = undefined;
    if (!follow || a.signal.aborted) return;
    record = await currentRecord(a);
    if (!moreToCome(record, attempt, next)) return;
  }
}

/** Whether a followed attempt may still have records past `next`: it runs, or it ended with more than were sent. */
function moreToCome(record: JobRecord, attempt: number, next: number): boolean {
  const at = record.job.attempts.find((x) => x.number === attempt);
  if (!at) return false;
  if (!at.finishedAt) return isActive(record.job.state) && record.job.attempt === attempt;
  return next < at.logRecords;
}
