/**
 * The job latency histograms, read off the job records as the tracker sees
 * them change: submit → assign and submit → running (first attempt), queue
 * wait per QoS class (every attempt: from its last QUEUED entry to its
 * assignment) and run duration (started → finished, by the attempt's end
 * state). Every peer sees every job, so only the leader observes: summed
 * over peers, each job counts once (a leadership change can drop or double
 * the few jobs in flight at that moment). Phases that happened before this
 * peer started are not observed (a restarted peer loads jobs mid-flight).
 */
import type { Counter, Histogram } from 'prom-client';
import { FailureCategory, JobState, type Attempt, type Job } from '../../proto/gen/runmesh/v1/job.js';
import type { JobTracker } from '../jobs/tracker.js';
import { isTerminal, stateName } from '../jobs/state.js';
import { qosName } from '../scheduler/convert.js';

export interface JobTimingInstruments {
  submitToAssign: Histogram<'qos'>;
  submitToRunning: Histogram<'qos'>;
  queueWait: Histogram<'qos'>;
  runDuration: Histogram<'qos' | 'state'>;
  /** Attempts ended because their agent was lost (gone past the heartbeat timeout). */
  agentLostAttempts: Counter;
}

/** How far a job's current attempt got, as observed. */
interface Seen {
  attempt: number;
  phase: Phase;
}

const enum Phase {
  None = 0,
  Assigned = 1,
  Started = 2,
  Finished = 3,
}

const ms = (at: string | undefined): number => (at ? Date.parse(at) : NaN);

export class JobTimings {
  private readonly seen = new Map<string, Seen>();
  private readonly since = Date.now();
  private readonly stop: Array<() => void>;

  constructor(
    tracker: Pick<JobTracker, 'subscribe' | 'onDeleted'>,
    private readonly m: JobTimingInstruments,
    private readonly isLeader: () => boolean,
  ) {
    this.stop = [tracker.subscribe((v) => this.update(v.record.job)), tracker.onDeleted((id) => this.seen.delete(id))];
  }

  update(job: Job): void {
    const prev = this.seen.get(job.id) ?? { attempt: 0, phase: Phase.None };
    let last = prev;
    for (const a of job.attempts) {
      if (a.number < prev.attempt) continue;
      const from = a.number === prev.attempt ? prev.phase : Phase.None;
      last = { attempt: a.number, phase: this.observe(job, a, from) };
    }
    if (isTerminal(job.state)) this.seen.delete(job.id);
    else this.seen.set(job.id, last);
  }

  /** Observes the phases of `a` past `from`; returns how far it got. */
  private observe(job: Job, a: Attempt, from: Phase): Phase {
    const qos = qosName(job.spec?.qos ?? 0);
    const assigned = ms(a.assignedAt);
    const started = ms(a.startedAt);
    const finished = ms(a.finishedAt);
    const submitted = ms(job.createdAt);
    let phase = from;
    if (phase < Phase.Assigned && !Number.isNaN(assigned)) {
      phase = Phase.Assigned;
      if (this.counts(assigned)) {
        if (a.number === 1) this.m.submitToAssign.observe({ qos }, seconds(assigned - submitted));
        this.m.queueWait.observe({ qos }, seconds(assigned - queuedAt(job, a.number, assigned)));
      }
    }
    if (phase < Phase.Started && !Number.isNaN(started)) {
      phase = Phase.Started;
      if (a.number === 1 && this.counts(started)) this.m.submitToRunning.observe({ qos }, seconds(started - submitted));
    }
    if (
      phase < Phase.Finished &&
      !Number.isNaN(finished) &&
      a.state !== JobState.JOB_STATE_ASSIGNED &&
      a.state !== JobState.JOB_STATE_RUNNING
    ) {
      phase = Phase.Finished;
      if (this.counts(finished)) {
        if (!Number.isNaN(started)) this.m.runDuration.observe({ qos, state: stateName(a.state) }, seconds(finished - started));
        if (a.failure === FailureCategory.FAILURE_CATEGORY_AGENT_LOST) this.m.agentLostAttempts.inc();
      }
    }
    return phase;
  }

  /** Whether an event at `at` (ms) is this peer's to observe. */
  private counts(at: number): boolean {
    return at >= this.since && this.isLeader();
  }

  close(): void {
    for (const s of this.stop) s();
    this.seen.clear();
  }
}

const seconds = (msDelta: number): number => Math.max(0, msDelta) / 1000;

/** When attempt `n` was queued: the submit for the first, else the last QUEUED entry at or before its assignment. */
function queuedAt(job: Job, n: number, assigned: number): number {
  if (n > 1) {
    for (let i = job.timeline.length - 1; i >= 0; i--) {
      const e = job.timeline[i]!;
      const at = ms(e.at);
      if (e.state === JobState.JOB_STATE_QUEUED && at <= assigned) return at;
    }
  }
  return ms(job.createdAt);
}
