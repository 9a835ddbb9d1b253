/**
 * The Logs RPC's loop: find the attempt (waiting for the first assignment when
 * following a queued job), stream its records from `from_seq`, and with
 * `follow` keep going until the attempt is over and everything was sent.
 */
import type { Job, LogsRequest, LogsResponse } from '../../proto/gen/runmesh/v1/job.js';
import { isActive, isTerminal } from '../jobs/state.js';
import type { JobRepo } from '../jobs/repo.js';
import type { JobTracker } from '../jobs/tracker.js';
import type { LogStore } from '../logs/log-store.js';
import { invalid, notFound } from './status.js';

export interface FollowArgs {
  id: string;
  request: LogsRequest;
  repo: JobRepo;
  tracker: JobTracker;
  logs: LogStore;
  signal: AbortSignal;
  /** Returns false when the client's buffer is full. */
  write(m: LogsResponse): boolean;
  drained(): Promise<void>;
}

async function currentJob(a: FollowArgs): Promise<Job> {
  const live = a.tracker.get(a.id);
  if (live) return live.record.job;
  const v = await a.repo.get(a.id);
  if (!v) throw notFound(`job ${a.id}`);
  return v.record.job;
}

/** Waits until the job has an attempt (or ends without one); returns its latest state. */
function untilAssigned(a: FollowArgs): Promise<Job> {
  return new Promise((resolve) => {
    const finish = (job: Job): void => {
      unsubscribe();
      a.signal.removeEventListener('abort', onAbort);
      resolve(job);
    };
    const unsubscribe = a.tracker.subscribe((v) => {
      if (v.record.job.id === a.id && (v.record.job.attempt > 0 || isTerminal(v.record.job.state))) finish(v.record.job);
    });
    const onAbort = (): void => finish({ attempt: 0 } as Job);
    a.signal.addEventListener('abort', onAbort, { once: true });
    void currentJob(a).then((job) => {
      if (job.attempt > 0 || isTerminal(job.state)) finish(job);
    });
  });
}

export async function followLogs(a: FollowArgs): Promise<void> {
  let job = await currentJob(a);
  if (a.request.attempt > Math.max(job.attempt, 0)) throw invalid('attempt', `job ${a.id} has ${job.attempt} attempt(s)`);
  if (job.attempt === 0) {
    if (!a.request.follow) return;
    job = await untilAssigned(a);
    if (job.attempt === 0) return;
  }
  const attempt = a.request.attempt || job.attempt;
  const file = await a.logs.file(a.id, attempt);
  // Wake the reader as soon as the attempt ends, rather than at its next poll.
  const unsubscribe = a.tracker.subscribe((v) => {
    if (v.record.job.id === a.id) file.emit('append', Number.MAX_SAFE_INTEGER);
  });
  const over = (): 'more' | 'done' => {
    if (!a.request.follow) return 'done';
    const live = a.tracker.get(a.id)?.record.job;
    return live && live.attempt === attempt && isActive(live.state) ? 'more' : 'done';
  };
  try {
    for await (const r of a.logs.read(a.id, attempt, a.request.fromSeq, over, a.signal)) {
      if (!a.write({ attempt, seq: r.seq, stream: r.stream, data: r.data })) await a.drained();
    }
  } finally {
    unsubscribe();
  }
}
