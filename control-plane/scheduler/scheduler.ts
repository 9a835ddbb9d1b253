/**
 * The scheduler: turns queued jobs into assignments. It owns no policy (that
 * is `routing/`); it builds the snapshot, asks the router, and writes the
 * outcome through the fenced job repository. Rounds never overlap: `kick()`
 * marks work and one loop drains it.
 */
import type { Logger } from 'pino';
import type { AgentView, Decision, Placement, Preemption } from '../../routing/index.js';
import { Router, snapshotOf } from '../../routing/index.js';
import { assign, lost, preempt, promote, setWaitingReason } from '../jobs/lifecycle.js';
import type { JobRecord } from '../jobs/record.js';
import type { Mutator } from '../jobs/repo.js';
import type { JobWriter } from '../jobs/writer.js';
import type { JobTracker } from '../jobs/tracker.js';
import type { ActiveIndex } from './active-index.js';
import type { HealthFeed } from './health-feed.js';

/** Where the scheduler sends its decisions: the peer holding the agent's stream (maybe this one). */
export interface Dispatcher {
  /** Pushes the assignment to the agent's stream; false when no peer holds the agent. */
  assign(agent: string, record: JobRecord): Promise<boolean>;
  cancel(agent: string, jobId: string, attempt: number, graceSeconds: number, reason: string): Promise<boolean>;
}

/** The agents the router may consider (mesh-wide), with free resources worked out from `index`. */
export interface AgentSource {
  views(index: ActiveIndex): AgentView[];
  /** True while the agent holds a session on some peer. */
  connected(name: string): boolean;
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
}

const TICK_MS = 250;
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

  constructor(private readonly o: SchedulerOptions) {
    this.router = o.router ?? new Router();
    this.index = o.index;
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

  /** Why a queued job is still waiting, as last decided. */
  waitingReason(jobId: string): string | undefined {
    return this.reasons.get(jobId);
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
    if (!this.leader()) return;
    await this.promoteDue(now);
    if (this.index.queued.size === 0) return;
    const agents = this.o.agents.views(this.index);
    const snapshot = snapshotOf(agents, this.index.running());
    const freeSlots = agents.reduce((n, a) => n + (a.schedulable ? Math.max(0, a.free.slots) : 0), 0);
    const decision = this.router.decide(snapshot, this.index.queueSlice(Math.max(MIN_SLICE, freeSlots)), now.getTime());
    await Promise.all([
      ...decision.placements.map((p) => this.place(p, now)),
      ...decision.preemptions.map((p) => this.preempt(p)),
    ]);
    await this.recordReasons(decision);
  }

  private async promoteDue(now: Date): Promise<void> {
    const due = [...this.index.waiting].filter(([, t]) => t <= now.getTime()).map(([id]) => id);
    await Promise.all(due.map((id) => this.write(id, (r) => promote(r, now))));
  }

  private async place(p: Placement, now: Date): Promise<void> {
    this.reasons.delete(p.jobId);
    const v = await this.write(p.jobId, (r) => assign(r, p.agent, now));
    if (!v) return;
    if (await this.o.dispatcher.assign(p.agent, v).catch(() => false)) return;
    this.o.logger.warn({ job_id: p.jobId, agent_id: p.agent }, 'agent gone before assignment, requeueing');
    await this.write(p.jobId, (r) => lost(r, v.job.attempt, 'agent disconnected before the assignment arrived', new Date()));
  }

  private async preempt(p: Preemption): Promise<void> {
    const at = this.index.attemptOf(p.victimJobId);
    if (!at) return;
    const v = await this.write(p.victimJobId, (r) => preempt(r, at.attempt));
    if (!v) return;
    this.o.logger.info({ job_id: p.victimJobId, agent_id: p.agent, for_job: p.forJobId }, 'preempting batch attempt');
    await this.o.dispatcher.cancel(p.agent, p.victimJobId, at.attempt, v.job.spec?.cancelGraceSeconds ?? 10, `preempted for critical job ${p.forJobId}`).catch(() => false);
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
      await Promise.all(jobs.map((id) => {
        const at = this.index.attemptOf(id);
        return at ? this.write(id, (r) => lost(r, at.attempt, reason, new Date(now))) : undefined;
      }));
    }
  }

  private write(id: string, mutate: Mutator): Promise<JobRecord | undefined> {
    return this.o.writer.write(id, mutate);
  }

  async close(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.unsubscribe?.();
    await this.running;
  }
}
