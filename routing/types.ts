/**
 * The routing contract: an immutable snapshot of the cluster plus the queued
 * jobs go in, placements come out. Nothing here does I/O, reads a clock or
 * holds a timer; callers pass `now` where time matters.
 */

import type { ExecutorName } from '../proto/executor-labels.js';

export type { ExecutorName } from '../proto/executor-labels.js';
export type QosClass = 'critical' | 'standard' | 'batch';
export type StrategyName = 'spread' | 'binpack';

export interface Resources {
  /** Every job occupies at least one slot; 0 is read as 1. */
  readonly slots: number;
  /** 0 = not tracked. */
  readonly cpuMillis: number;
  /** 0 = not tracked. */
  readonly memoryMb: number;
}

/** One agent as the router sees it at snapshot time. */
export interface AgentView {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly capacity: Resources;
  /** What is left after the attempts it runs now. */
  readonly free: Resources;
  /** Host load (one-minute load average divided by cores), 0 when unknown. */
  readonly load: number;
  /** False when cordoned, draining, unhealthy (its disk is full) or disconnected: no new work. */
  readonly schedulable: boolean;
}

/** An attempt running now; the router may preempt batch ones for critical jobs. */
export interface RunningAttemptView {
  readonly jobId: string;
  readonly agent: string;
  readonly qos: QosClass;
  readonly resources: Resources;
  /**
   * When the attempt started (ms since the epoch); preemption prefers the
   * newest victims (least work lost). When absent, later entries in
   * `snapshot.running` count as newer.
   */
  readonly startedAt?: number;
}

/** A job waiting for an agent. */
export interface QueuedJob {
  readonly id: string;
  /** Raw selector text; parsed (and cached) by the router. Empty matches all. */
  readonly selector: string;
  readonly resources: Resources;
  readonly qos: QosClass;
  readonly tenant: string;
  readonly priority: number;
  readonly affinityKey: string;
  readonly strategy: StrategyName;
  /**
   * The executor it runs under. Absent or `shell`: every agent. Any other:
   * only agents advertising it (label `runmesh.io/executor-<name>`, see
   * proto/executor-labels.ts), as if the selector required that label.
   */
  readonly executor?: ExecutorName;
  /** Submission order; lower is older (FIFO tiebreak). */
  readonly order: number;
  /**
   * Agents to avoid (host exclusion: an earlier attempt failed there for an
   * infrastructure reason). Skipped while another agent matching the job,
   * taking work and large enough for it exists; when none does, they may run
   * it again, and the waiting reason says so.
   */
  readonly avoid?: readonly string[];
}

export interface Placement {
  readonly jobId: string;
  readonly agent: string;
  /** Set when the agent is one the job avoids, taken because no other could: says so. */
  readonly note?: string;
}

export interface Preemption {
  /** The running batch attempt to cancel and re-queue. */
  readonly victimJobId: string;
  readonly agent: string;
  /** The critical job that needs the room. */
  readonly forJobId: string;
}

export interface Decision {
  readonly placements: readonly Placement[];
  readonly preemptions: readonly Preemption[];
  /**
   * For each job left waiting: a human reason. Jobs no agent could ever run
   * start with `unschedulable:` ("unschedulable: no agent matches os=mac");
   * transient waits start with `waiting:` or `preempting`.
   */
  readonly waiting: ReadonlyMap<string, string>;
}
