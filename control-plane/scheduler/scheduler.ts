/**
 * The scheduler: turns queued jobs into assignments. It owns no policy (that
 * is `routing/`); it builds the snapshot, asks the router, and writes the
 * outcome through the fenced job repository. Rounds never overlap: `kick()`
 * marks work and one loop drains it.
 */
import type { Logger } from 'pino';
import type { AgentView, ClusterSnapshot, Decision, Placement, Preemption } from '../../routing/index.js';
import { Router, snapshotOf } from '../../routing/index.js';
import { explainWait, type WaitDetail } from '../../routing/explain.js';
import { assign, finish, lost, preempt, promote, queueTimedOut, setWaitingReason, undelivered } from '../jobs/lifecycle.js';
import { FailureCategory } from '../../proto/gen/runmesh/v1/job.js';
import { isSecretMissing } from '../secrets/errors.js';
import { cloneRecord, type JobRecord } from '../jobs/record.js';
import type { Created, Mutator, Versioned } from '../jobs/repo.js';
import type { JobWriter } from '../jobs/writer.js';
import type { JobTracker } from '../jobs/tracker.js';
import { toQueued, type ActiveIndex } from './active-index.js';
import type { HealthFeed } from './health-feed.js';
import type { GroupSlots } from '../jobs/group-slots.js';
import { GroupConflicts, groupActions } from './group-conflicts.js';
import type { TraceContext } from '../../transport/tracing/carrier.js';
import { TRACING_OFF, type Tracing } from '../../transport/tracing/tracing.js';
import { dispatchSpan, jobTrace, traceScheduled } from './trace.js';

/** Where the scheduler sends its decisions: the peer holding the agent's stream (maybe this one). */
export interface Dispatcher {
  /** Pushes the assignment to the agent's stream, with `trace` for the agent's span and the job; false when no peer holds the agent. */
  assign(agent: string, record: JobRecord, trace?: TraceContext): Promise<boolean>;
  cancel(agent: string, jobId: string, attempt: number, graceSeconds: number, reason: string): Promise<boolean>;
}

/** The agents the router may consider (mesh-wide), with free resources worked out from `index`. */
export interface AgentSource {
  views(index: ActiveIndex): AgentView[];
  /** True while the agent holds a session on some peer. */
  connected(name: string): boolean;
}

/** A queued job's wait, explained (Scheduler.explain). */
export interface WaitExplanation extends WaitDetail {
  reason: string;
  /** 1-based place among the queued jobs of its QoS class and tenant; `queued` of them in all. */
  position: number;
  queued: number;
}

export interface SchedulerOptions {
  writer: JobWriter;
  tracker: JobTracker;
  agents: AgentSource;
  dispatcher: Dispatcher;
  /** Live attempts and the queue; shared with the gateway, fed by this scheduler. */
  index: ActiveIndex;
  router?: Router;
  /** Turns transitions into the router's health observations. */
  healthFeed?: HealthFeed;
  logger: Logger;
  /** Unschedulable reasons persisted per round, at most (the rest stay in memory). */
  reasonWritesPerRound?: number;
  /** Only the elected leader schedules; others keep their index for status. Default: always. */
  isLeader?: () => boolean;
  /** An agent gone from every peer this long loses its active attempts. */
  agentLostAfterMs: number;
  /** Told of each agent declared lost, with the jobs it held (outbound webhooks' agent.lost). */
  onAgentLost?: (agent: string, jobs: readonly string[], reason: string) => void;
  /** Concurrency groups' slots in the store: every grouped assignment is guarded by them. */
  groupSlots: GroupSlots;
  /** Spans for each placement and delivery (trace.ts). Default: off. */
  tracing?: Tracing;
}

interface Admission {
  records: JobRecord[];
  resolve(stored: Created[]): void;
  reject(err: unknown): void;
}

const TICK_MS = 250;
/**
 * An assignment stored but with no word from its agent this long is pushed
 * again (the agent ignores an Assign it has seen). It covers the one write
 * whose outcome is unknown: a commit whose answer was lost (etcd restarted),
 * which the retry then sees as "already assigned" and does not deliver.
 */
const REDELIVER_AFTER_MS = 5_000;
/** Jobs per (QoS, tenant) shown to the router even with no free slot: preemption and reasons need them. */
const MIN_SLICE = 64;

export class Scheduler {
  readonly index: ActiveIndex;
  private readonly router: Router;
  private readonly reasons = new Map<string, string>();
  private dirty = false;
  private running: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private stopped = false;
  /** Agents with active attempts that no peer holds, and since when. */
  private readonly missing = new Map<string, number>();
  /** When each unconfirmed assignment was last pushed again. */
  private readonly redelivered = new Map<string, number>();
  /** Queued jobs past their queue timeout whose TIMED_OUT write is in flight. */
  private readonly expiring = new Set<string>();
  /** Submitted jobs waiting for the next round to store them (placed, or queued). */
  private admissions: Admission[] = [];
  private last: ClusterSnapshot | undefined;
  private readonly conflicts: GroupConflicts;
  private readonly tracing: Tracing;

  constructor(private readonly o: SchedulerOptions) {
    this.router = o.router ?? new Router();
    this.index = o.index;
    this.conflicts = new GroupConflicts({
      write: (id, mutate) => this.write(id, mutate),
      current: (id) => o.tracker.get(id)?.record,
      cancelOnAgent: (agent, id, attempt, grace, reason) => o.dispatcher.cancel(agent, id, attempt, grace, reason),
      reasons: this.reasons,
      logger: o.logger,
      reasonWrites: o.reasonWritesPerRound ?? 100,
    });
    this.tracing = o.tracing ?? TRACING_OFF;
  }

  start(): void {
    for (const v of this.o.tracker.values()) this.index.update(v);
    this.unsubscribe = this.o.tracker.subscribe((v) => {
      this.index.update(v);
      this.o.healthFeed?.observe(v);
      this.kick();
    });
    this.timer = setInterval(() => this.onTick(), TICK_MS);
    this.timer.unref();
    this.kick();
  }

  /** Asks for a scheduling round soon; cheap to call often. */
  kick(): void {
    this.dirty = true;
    if (!this.running && !this.stopped) this.running = this.loop().finally(() => (this.running = undefined));
  }

  /**
   * Stores newly submitted (drafted) jobs; resolves once every one is durable.
   * On the leader with nothing queued, the jobs that fit an agent now are
   * stored already assigned, in one fenced write instead of a QUEUED write
   * and an assignment, and pushed to the agent; the rest are stored QUEUED.
   * With a queue, new jobs join its back (placing them first would jump it).
   */
  admit(records: JobRecord[]): Promise<Created[]> {
    if (this.stopped || !this.leader()) return this.o.writer.create(records);
    return new Promise((resolve, reject) => {
      this.admissions.push({ records, resolve, reject });
      this.kick();
    });
  }

  /** Why a queued job is still waiting, as last decided. */
  waitingReason(jobId: string): string | undefined {
    return this.reasons.get(jobId);
  }

  /**
   * "Why is it waiting?" for a queued job: the latest reason, routing's
   * term-by-term detail against the cluster as it is now (routing/explain.ts),
   * and its place in its queue (its QoS class and tenant, in routing order).
   * Undefined when the job is not queued.
   */
  explain(jobId: string, breakerOpen: (agent: string) => boolean): WaitExplanation | undefined {
    const job = this.index.queued.get(jobId);
    if (!job) return undefined;
    const snapshot = snapshotOf(this.o.agents.views(this.index), this.index.running());
    let position = 1;
    let queued = 0;
    for (const j of this.index.queued.values()) {
      if (j.qos !== job.qos || j.tenant !== job.tenant) continue;
      queued++;
      if (j.priority > job.priority || (j.priority === job.priority && j.order < job.order)) position++;
    }
    return { reason: this.reasons.get(jobId) ?? '', ...explainWait(snapshot, job, breakerOpen), position, queued };
  }

  /** Queued jobs no agent could ever run, with the reason. */
  unschedulable(): Array<{ jobId: string; reason: string }> {
    return [...this.reasons].filter(([, r]) => r.startsWith('unschedulable')).map(([jobId, reason]) => ({ jobId, reason }));
  }

  private leader(): boolean {
    return this.o.isLeader?.() ?? true;
  }

  private onTick(): void {
    const now = Date.now();
    if (!this.leader()) {
      this.missing.clear();
      return;
    }
    void this.sweepLost(now);
    void this.redeliver(now);
    void this.expireQueued(now);
    const due = [...this.index.waiting.values()].some((t) => t <= now);
    if (due || this.index.queued.size > 0) this.kick();
  }

  private async loop(): Promise<void> {
    while (this.dirty && !this.stopped) {
      this.dirty = false;
      try {
        await this.round(new Date());
      } catch (err) {
        this.o.logger.error({ err }, 'scheduling round failed');
      }
    }
  }

  private async round(now: Date): Promise<void> {
    const admitted = this.admissions;
    this.admissions = [];
    if (admitted.length > 0) await this.admitNow(admitted, now);
    if (!this.leader()) return;
    await this.promoteDue(now);
    if (this.index.groups.size > 0) await this.conflicts.apply(groupActions(this.index.groups.entries()));
    if (this.index.queued.size === 0) return;
    const agents = this.o.agents.views(this.index);
    const snapshot = this.snapshot(agents);
    const freeSlots = agents.reduce((n, a) => n + (a.schedulable ? Math.max(0, a.free.slots) : 0), 0);
    const decision = this.router.decide(snapshot, this.index.queueSlice(Math.max(MIN_SLICE, freeSlots)), now.getTime());
    await Promise.all([...decision.placements.map((p) => this.place(p, now)), ...decision.preemptions.map((p) => this.preempt(p))]);
    await this.recordReasons(decision);
  }

  private async admitNow(admitted: Admission[], now: Date): Promise<void> {
    const records = admitted.flatMap((a) => a.records);
    try {
      const stored = new Map<string, Created>();
      // A job with an idempotency key is stored queued, under its key (a repeat gets the first job), then placed as any queued job.
      // A pipeline job held for its needs is stored as it is, WAITING.
      // A job of a concurrency group takes a slot only through place() and its guard.
      const fresh = records.filter((r) => !r.job.spec.idempotencyKey && !r.held && !r.job.spec.concurrencyGroup);
      const placed = this.leader() && this.index.queued.size === 0 ? await this.placeFresh(fresh, now) : [];
      // Assignments go out first: the agent's Assign does not wait behind the submitter's answer.
      const delivered = Promise.all(placed.map((v) => this.deliver(v.record, traceScheduled(this.tracing, v.record))));
      for (const v of placed) stored.set(v.record.job.id, { ...v, existing: false });
      const rest = records.filter((r) => !stored.has(r.job.id));
      // By draft: a repeated idempotency key answers with the first job, whose id is not the draft's.
      for (const [i, c] of (await this.o.writer.create(rest)).entries()) stored.set(rest[i]!.job.id, c);
      for (const a of admitted) a.resolve(a.records.map((r) => stored.get(r.job.id)!));
      await delivered;
    } catch (err) {
      for (const a of admitted) a.reject(err);
    }
  }

  /** Routes fresh jobs against the cluster as it is and stores those placed as assigned. */
  private async placeFresh(records: JobRecord[], now: Date): Promise<Versioned[]> {
    const agents = this.o.agents.views(this.index);
    const byId = new Map(records.map((r) => [r.job.id, r]));
    const decision = this.router.decide(this.snapshot(agents), records.map(toQueued), now.getTime());
    await Promise.all(decision.preemptions.map((p) => this.preempt(p)));
    const inserted = await Promise.all(
      decision.placements.map((p) => {
        const r = cloneRecord(byId.get(p.jobId)!);
        assign(r, p.agent, now);
        return this.o.writer.insert(r);
      }),
    );
    return inserted.filter((v): v is Versioned => v !== undefined);
  }

  /** This round's snapshot; the agent indices of the last one are reused while the agents are the same. */
  private snapshot(agents: AgentView[]): ClusterSnapshot {
    this.last = snapshotOf(agents, this.index.running(), this.last);
    return this.last;
  }

  private async promoteDue(now: Date): Promise<void> {
    const due = [...this.index.waiting].filter(([, t]) => t <= now.getTime()).map(([id]) => id);
    await Promise.all(due.map((id) => this.write(id, (r) => promote(r, now))));
  }

  private async place(p: Placement, now: Date): Promise<void> {
    this.reasons.delete(p.jobId);
    // The group slot guard: a grouped job is stored ASSIGNED only with a free slot, kept in the store.
    const v = await this.o.writer.write(p.jobId, (r) => assign(r, p.agent, now, p.note), this.o.groupSlots.guard);
    if (v) await this.deliver(v, traceScheduled(this.tracing, v));
  }

  /**
   * Pushes a stored assignment to its agent. When no peer holds the agent the
   * job is queued again at once, without using up a retry (nothing ran). When
   * the outcome is unknown (a peer call failed), it stays assigned: it is sent
   * again if the agent stays silent, and the lost sweep takes it if the agent is gone.
   */
  private async deliver(r: JobRecord, trace: TraceContext | undefined): Promise<void> {
    const agent = r.job.attempts.at(-1)?.agent ?? '';
    const attempt = r.job.attempt;
    const delivered = await this.send(agent, r, trace).catch(async (err: unknown) => {
      if (isSecretMissing(err)) {
        await this.failMissingSecret(r, err);
        return true;
      }
      this.o.logger.warn(
        { err, job_id: r.job.id, agent_id: agent, attempt },
        'assignment delivery unconfirmed; it is sent again if the agent stays silent',
      );
      return true;
    });
    if (delivered) return;
    this.o.logger.warn({ job_id: r.job.id, agent_id: agent, attempt }, 'agent gone before assignment, requeueing');
    await this.write(r.job.id, (x) => undelivered(x, attempt, `agent ${agent} was gone before the assignment arrived`, new Date()));
  }

  /** Sends `r`'s Assign to `agent` under a runmesh.dispatch span, whose context the Assign carries. */
  private async send(agent: string, r: JobRecord, parent: TraceContext | undefined): Promise<boolean> {
    const span = dispatchSpan(this.tracing, r, agent, parent);
    try {
      const delivered = await this.o.dispatcher.assign(agent, r, span.context);
      span.end(delivered ? 'delivered' : 'agent not held by any peer');
      return delivered;
    } catch (err) {
      span.end(isSecretMissing(err) ? 'secret missing' : 'unconfirmed', (err as Error).message);
      throw err;
    }
  }

  /**
   * A secret the job references was deleted after it was submitted: no
   * attempt of it can run, so it fails (not runnable, never retried) instead
   * of being sent again and again.
   */
  private async failMissingSecret(r: JobRecord, err: unknown): Promise<void> {
    const attempt = r.job.attempt;
    const message = `cannot start: ${(err as Error).message}`;
    this.o.logger.warn({ job_id: r.job.id, attempt, reason: message }, 'secret of the job missing, failing it');
    await this.write(r.job.id, (x) =>
      finish(x, attempt, { exitCode: -1, failure: FailureCategory.FAILURE_CATEGORY_NOT_RUNNABLE, message, logRecords: 0 }, new Date()),
    );
  }

  private async preempt(p: Preemption): Promise<void> {
    const at = this.index.attemptOf(p.victimJobId);
    if (!at) return;
    const v = await this.write(p.victimJobId, (r) => preempt(r, at.attempt));
    if (!v) return;
    this.o.logger.info({ job_id: p.victimJobId, agent_id: p.agent, for_job: p.forJobId }, 'preempting batch attempt');
    await this.o.dispatcher
      .cancel(p.agent, p.victimJobId, at.attempt, v.job.spec.cancelGraceSeconds, `preempted for critical job ${p.forJobId}`)
      .catch(() => false);
  }

  private async recordReasons(decision: Decision): Promise<void> {
    let budget = this.o.reasonWritesPerRound ?? 100;
    const writes: Promise<unknown>[] = [];
    for (const [id, reason] of decision.waiting) {
      const before = this.reasons.get(id);
      this.reasons.set(id, reason);
      if (before === reason || budget <= 0 || !reason.startsWith('unschedulable')) continue;
      budget--;
      writes.push(this.write(id, (r) => setWaitingReason(r, reason)));
    }
    for (const id of this.reasons.keys()) if (!this.index.queued.has(id)) this.reasons.delete(id);
    await Promise.all(writes);
  }

  /**
   * The "agent lost" rule, mesh-wide: an agent with active attempts that no
   * peer holds (its session key went with its peer's lease, or it hung up)
   * for longer than the timeout loses them; they are re-queued or finished.
   */
  private async sweepLost(now: number): Promise<void> {
    for (const name of this.index.agentsWithAttempts()) {
      if (this.o.agents.connected(name)) {
        this.missing.delete(name);
        continue;
      }
      const since = this.missing.get(name) ?? now;
      this.missing.set(name, since);
      if (now - since < this.o.agentLostAfterMs) continue;
      this.missing.delete(name);
      const jobs = this.index.jobsOn(name);
      this.o.logger.warn({ agent_id: name, attempts: jobs.length }, 'agent lost');
      const reason = `agent ${name} lost (gone for ${this.o.agentLostAfterMs} ms)`;
      this.o.onAgentLost?.(name, jobs, reason);
      await Promise.all(
        jobs.flatMap((id) => {
          const at = this.index.attemptOf(id);
          return at ? [this.write(id, (r) => lost(r, at.attempt, reason, new Date(now)))] : [];
        }),
      );
    }
  }

  /**
   * Queue timeouts, the leader's: a queued job whose timeout passed ends
   * TIMED_OUT. The deadline comes from the record (when it last became
   * QUEUED), so a new leader enforces what the old one would have.
   */
  private async expireQueued(now: number): Promise<void> {
    const due = [...this.o.index.queueDeadlines].filter(([id, at]) => at <= now && !this.expiring.has(id)).map(([id]) => id);
    await Promise.all(
      due.map(async (id) => {
        this.expiring.add(id);
        try {
          const v = await this.write(id, (r) => queueTimedOut(r, new Date(now)));
          if (v)
            this.o.logger.info({ job_id: id, queue_timeout_s: v.job.spec.queueTimeoutSeconds }, 'queue timeout: job timed out unstarted');
        } finally {
          this.expiring.delete(id);
        }
      }),
    );
  }

  private async redeliver(now: number): Promise<void> {
    const stale = this.index.unstarted(now - REDELIVER_AFTER_MS);
    for (const id of this.redelivered.keys()) if (!this.index.attemptOf(id)) this.redelivered.delete(id);
    await Promise.all(
      stale.map(async ({ jobId, agent, attempt }) => {
        if (now - (this.redelivered.get(jobId) ?? 0) < REDELIVER_AFTER_MS) return;
        const r = this.o.tracker.get(jobId)?.record;
        if (!r || r.job.attempt !== attempt || !this.o.agents.connected(agent)) return;
        this.redelivered.set(jobId, now);
        this.o.logger.info({ job_id: jobId, agent_id: agent, attempt }, 'no word of an assignment, sending it again');
        await this.send(agent, r, jobTrace(r)).catch(async (err: unknown) => {
          if (isSecretMissing(err)) await this.failMissingSecret(r, err);
          return false;
        });
      }),
    );
  }

  private write(id: string, mutate: Mutator): Promise<JobRecord | undefined> {
    return this.o.writer.write(id, mutate);
  }

  async close(): Promise<void> {
    this.stopped = true;
    const admitted = this.admissions;
    this.admissions = [];
    for (const a of admitted) a.reject(new Error('scheduler stopped'));
    clearInterval(this.timer);
    this.unsubscribe?.();
    await this.running;
  }
}
