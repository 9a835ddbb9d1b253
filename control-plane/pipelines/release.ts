/**
 * The leader's half of pipelines: a job held for its needs (jobs/needs.ts)
 * is released to the queue, or skipped, once they have ended. Driven by
 * durable state only: every job change the tracker sees (a need ending) marks
 * the jobs held for it, each is decided from the needs' stored states and
 * written in its own fenced transaction. Nothing is remembered across a
 * failover: a new leader decides every held job again (`leaderChanged`),
 * and a sweep retries what a failed write left.
 */
import type { Logger } from 'pino';
import { JobState } from '../../proto/gen/runmesh/v1/job.js';
import { jobIdTime } from '../jobs/ids.js';
import { decide, release, skip, type NeedOutcome } from '../jobs/needs.js';
import type { JobRepo, Versioned } from '../jobs/repo.js';
import { isTerminal } from '../jobs/state.js';
import type { JobTracker } from '../jobs/tracker.js';
import type { JobWriter } from '../jobs/writer.js';

export interface ReleaseOptions {
  tracker: JobTracker;
  /** Where needs that ended (no longer tracked) are read. */
  repo: JobRepo;
  /** The leader's writer: fenced on its term. */
  writer: JobWriter;
  isLeader(): boolean;
  logger: Logger;
  /** How often held jobs with an ended need are decided again. Default 2 s. */
  sweepMs?: number;
}

/**
 * A need not stored this long after its pipeline was submitted is gone
 * (deleted after its retention): the jobs needing it are skipped. Younger,
 * it may still be on its way (a batch is stored in several transactions).
 */
const MISSING_AFTER_MS = 60_000;

interface Ended {
  name: string;
  state: JobState;
  allowFailure: boolean;
}

export class NeedsRelease {
  /** Held jobs and the ids of their needs. */
  private readonly held = new Map<string, readonly string[]>();
  /** Need id → the held jobs waiting for it. */
  private readonly dependents = new Map<string, Set<string>>();
  /** Needs that ended, as read: kept while a held job waits for them. */
  private readonly ended = new Map<string, Ended>();
  /** Held jobs to decide. */
  private readonly due = new Set<string>();
  private running: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly stops: Array<() => void> = [];
  private stopped = false;

  constructor(private readonly o: ReleaseOptions) {}

  start(): void {
    for (const v of this.o.tracker.values()) this.track(v);
    this.stops.push(this.o.tracker.subscribe((v) => this.changed(v)));
    this.stops.push(this.o.tracker.onDeleted((id) => this.changedNeed(id)));
    this.timer = setInterval(() => this.sweep(), this.o.sweepMs ?? 2_000);
    this.timer.unref();
    this.leaderChanged();
  }

  /** A new leader (maybe this peer) decides every held job again: the old one may have died between a need's end and its write. */
  leaderChanged(): void {
    for (const id of this.held.keys()) this.due.add(id);
    this.kick();
  }

  private changed(v: Versioned): void {
    const id = v.record.job.id;
    if (this.track(v)) this.due.add(id);
    else this.untrack(id);
    const waiting = this.dependents.get(id);
    if (waiting) {
      if (isTerminal(v.record.job.state)) this.ended.set(id, endedOf(v));
      else this.ended.delete(id); // retried: what it ended as before is not what it is now
      for (const d of waiting) this.due.add(d);
    }
    this.kick();
  }

  /** A need's record was deleted: the jobs held for it are decided again. */
  private changedNeed(id: string): void {
    this.untrack(id);
    for (const d of this.dependents.get(id) ?? []) this.due.add(d);
    this.kick();
  }

  /** Indexes a held job; false when `v` is not one. */
  private track(v: Versioned): boolean {
    const r = v.record;
    if (!r.held || r.job.state !== JobState.JOB_STATE_WAITING) return false;
    const id = r.job.id;
    if (this.held.has(id)) return true;
    const needs = r.needs ?? [];
    this.held.set(id, needs);
    for (const n of needs) {
      let set = this.dependents.get(n);
      if (!set) this.dependents.set(n, (set = new Set()));
      set.add(id);
    }
    return true;
  }

  private untrack(id: string): void {
    const needs = this.held.get(id);
    if (!needs) return;
    this.held.delete(id);
    this.due.delete(id);
    for (const n of needs) {
      const set = this.dependents.get(n);
      set?.delete(id);
      if (set?.size === 0) {
        this.dependents.delete(n);
        this.ended.delete(n);
      }
    }
  }

  /** Held jobs one of whose needs is not live any more: their decision may be due (a write that failed, a need that was missing). */
  private sweep(): void {
    if (!this.o.isLeader()) return;
    for (const [id, needs] of this.held) if (needs.some((n) => !this.o.tracker.get(n))) this.due.add(id);
    this.kick();
  }

  private kick(): void {
    if (this.running || this.stopped || this.due.size === 0 || !this.o.isLeader()) return;
    this.running = this.drain().finally(() => {
      this.running = undefined;
      if (this.due.size > 0) this.kick();
    });
  }

  private async drain(): Promise<void> {
    while (this.due.size > 0 && this.o.isLeader() && !this.stopped) {
      const batch = [...this.due].slice(0, 256);
      for (const id of batch) this.due.delete(id);
      await Promise.all(batch.map((id) => this.decideOne(id)));
    }
  }

  private async decideOne(id: string): Promise<void> {
    const v = this.o.tracker.get(id);
    if (!v?.record.held) return void this.untrack(id);
    try {
      const needs = await Promise.all((v.record.needs ?? []).map((n) => this.outcomeOf(n)));
      const submitted = jobIdTime(id) ?? Date.parse(v.record.job.createdAt ?? '');
      const verdict = decide(needs, () => Date.now() - submitted > MISSING_AFTER_MS);
      if (verdict.kind === 'wait') return;
      const now = new Date();
      const written = await this.o.writer.write(id, (r) =>
        verdict.kind === 'release' ? release(r, verdict.reason, now) : skip(r, verdict.reason, now),
      );
      if (written)
        this.o.logger.info(
          { job_id: id, pipeline_id: v.record.job.pipelineId, outcome: verdict.kind, reason: verdict.reason },
          'pipeline job decided',
        );
    } catch (err) {
      // The store could not say what a need came to: decided again at the next sweep, never read as "absent".
      this.o.logger.warn({ err, job_id: id }, 'could not read the needs of a pipeline job; trying again');
    }
  }

  /** What a need is now: live in the tracker, ended (cached, else read from the store), or not stored. */
  private async outcomeOf(id: string): Promise<NeedOutcome> {
    const live = this.o.tracker.get(id);
    if (live) return { id, ...endedOf(live) };
    const known = this.ended.get(id);
    if (known) return { id, ...known };
    const stored = await this.o.repo.get(id);
    if (!stored) return { id, name: id, state: undefined, allowFailure: false };
    const ended = endedOf(stored);
    if (isTerminal(ended.state) && this.dependents.has(id)) this.ended.set(id, ended);
    return { id, ...ended };
  }

  async close(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    for (const stop of this.stops) stop();
    await this.running;
  }
}

function endedOf(v: Versioned): Ended {
  const spec = v.record.job.spec;
  return { name: spec.name || v.record.job.id, state: v.record.job.state, allowFailure: spec.allowFailure };
}
