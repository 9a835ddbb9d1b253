/**
 * What the store holds per job: the public `Job` plus the few internal fields
 * the control plane needs to rebuild its state after a restart or failover.
 */
import { Job, JobState, type JobSpec, type Resources } from '../../proto/gen/runmesh/v1/job.js';

/**
 * A job spec as stored: every default was resolved once, at submit
 * (`validateSpec` in validate.ts), so no reader applies one again.
 */
export type ResolvedSpec = JobSpec & { resources: Resources };

/** The public Job as stored: its spec is always there, resolved. */
export type StoredJob = Job & { spec: ResolvedSpec };

export interface JobRecord {
  job: StoredJob;
  /** Submission order (FIFO tiebreak in routing). */
  order: number;
  /** Set by Cancel while an attempt is active; delivered to the agent until it ends. */
  cancel?: { reason: string; at: string };
  /** Set when an attempt was preempted: the requeue does not use up a retry. */
  preempted?: boolean;
  /**
   * Per finished attempt: the peers whose blob directories hold its sealed log
   * (the accepting peer first); records from before copies name one peer. Read through `logHolders`.
   */
  logPeers?: Record<number, string[] | string>;
  /** Per attempt that stored artifacts: the peers whose blob directories hold them (the accepting peer first). */
  artifactPeers?: Record<number, string[]>;
  /** The W3C `tracestate` that goes with `job.traceParent` (docs/architecture.md, "Tracing"); absent when none. */
  traceState?: string;
  /** Pipelines: the ids of the jobs this one needs (its spec's `needs`, resolved at submit). */
  needs?: string[];
  /** Set while the job is WAITING for its needs (not a retry's backoff); cleared when they release or skip it. */
  held?: boolean;
}

/** A new QUEUED record with id `id`, submitted `now`, `order` in the queue. */
export function queuedRecord(id: string, spec: ResolvedSpec, now: Date, order: number): JobRecord {
  const at = now.toISOString();
  const job: StoredJob = {
    id,
    spec,
    state: JobState.JOB_STATE_QUEUED,
    attempt: 0,
    attempts: [],
    timeline: [{ state: JobState.JOB_STATE_QUEUED, at, attempt: 0, reason: 'submitted' }],
    createdAt: at,
    updatedAt: at,
    waitingReason: '',
    notBefore: undefined,
    exitCode: 0,
    failure: 0,
    traceParent: '',
    avoidedAgents: [],
    redrives: 0,
    sequenceStart: 0,
    pipelineId: '',
    progress: undefined,
    annotations: [],
    schedule: '',
    scheduledAt: undefined,
    waitingOnGroup: '',
    supersededBy: '',
  };
  return { job, order };
}

export function encodeRecord(r: JobRecord): string {
  return JSON.stringify({
    job: Job.toJSON(r.job),
    order: r.order,
    cancel: r.cancel,
    preempted: r.preempted,
    logPeers: r.logPeers,
    artifactPeers: r.artifactPeers,
    traceState: r.traceState,
    needs: r.needs,
    held: r.held,
  });
}

export function decodeRecord(text: string): JobRecord {
  const raw = JSON.parse(text) as {
    job: unknown;
    order: number;
    cancel?: JobRecord['cancel'];
    preempted?: boolean;
    logPeers?: JobRecord['logPeers'];
    artifactPeers?: JobRecord['artifactPeers'];
    traceState?: string;
    needs?: string[];
    held?: boolean;
  };
  const job = Job.fromJSON(raw.job);
  // Every record was stored with its spec resolved; one without is not ours to guess at.
  if (!job.spec?.resources) throw new Error(`job record ${job.id || '(no id)'} has no resolved spec`);
  const r: JobRecord = { job: job as StoredJob, order: raw.order };
  if (raw.cancel) r.cancel = raw.cancel;
  if (raw.preempted) r.preempted = true;
  if (raw.logPeers) r.logPeers = raw.logPeers;
  if (raw.artifactPeers) r.artifactPeers = raw.artifactPeers;
  if (raw.traceState) r.traceState = raw.traceState;
  if (raw.needs) r.needs = raw.needs;
  if (raw.held) r.held = true;
  return r;
}

/** The peers holding an attempt's sealed log; none before its result was accepted. */
export function logHolders(r: JobRecord, attempt: number): string[] {
  const held = r.logPeers?.[attempt];
  return typeof held === 'string' ? [held] : (held ?? []);
}

/**
 * A copy safe to mutate through the lifecycle verbs: they edit the job's own
 * fields, its attempts and the timeline array, never the spec or a timeline
 * entry, so those are shared.
 */
export function cloneRecord(r: JobRecord): JobRecord {
  const job = { ...r.job, attempts: r.job.attempts.map((a) => ({ ...a })), timeline: [...r.job.timeline] };
  return {
    ...r,
    job,
    cancel: r.cancel && { ...r.cancel },
    logPeers: r.logPeers && { ...r.logPeers },
    artifactPeers: r.artifactPeers && { ...r.artifactPeers },
  };
}
