/**
 * Incremental indices over live jobs, fed by the tracker: which attempts run
 * where (per-agent usage, preemption candidates, lost-agent sweeps) and which
 * jobs wait in the queue. Kept in step with each change, never rescanned.
 */
import { JobState } from '../../proto/gen/runmesh/v1/job.js';
import { executorName } from '../../proto/executor-labels.js';
import type { QueuedJob, Resources, RunningAttemptView } from '../../routing/index.js';
import { activeAgent, queueDeadline } from '../jobs/lifecycle.js';
import type { JobRecord } from '../jobs/record.js';
import type { Versioned } from '../jobs/repo.js';
import { QueueBuckets } from './queue-buckets.js';
import { GroupQueues } from './group-queues.js';
import { groupOf } from '../jobs/group-slots.js';
import { add, qosName, strategyName, ZERO } from './convert.js';

interface Active {
  agent: string;
  attempt: number;
  view: RunningAttemptView;
  /** ms; set while the attempt is ASSIGNED and the agent has not reported it running. */
  unstartedSince?: number;
}

export class ActiveIndex {
  private readonly active = new Map<string, Active>();
  private readonly byAgent = new Map<string, Set<string>>();
  private readonly usage = new Map<string, Resources>();
  readonly queued = new Map<string, QueuedJob>();
  private readonly buckets = new QueueBuckets((j) => this.queued.get(j.id) === j);
  /** WAITING jobs and when their backoff ends (ms); not pipeline jobs held for their needs (pipelines/release.ts). */
  readonly waiting = new Map<string, number>();
  /** QUEUED jobs with a queue timeout, and when it passes (ms). */
  readonly queueDeadlines = new Map<string, number>();
  /** Jobs of concurrency groups: slots held, and queued jobs released to the router or held back. */
  readonly groups = new GroupQueues();

  /** Applies one job's new version. */
  update(v: Versioned): void {
    const job = v.record.job;
    this.dropActive(job.id);
    this.queued.delete(job.id);
    this.waiting.delete(job.id);
    this.queueDeadlines.delete(job.id);
    const left = this.groups.remove(job.id);
    const group = groupOf(job.spec);
    const member = group && { id: job.id, order: v.record.order, group };
    const agent = activeAgent(v.record);
    if (agent) {
      this.addActive(job.id, agent, v);
      if (member) this.groups.activate(member);
    } else if (job.state === JobState.JOB_STATE_QUEUED) {
      const q = toQueued(v.record);
      this.queued.set(job.id, q);
      // A grouped job reaches the router only once its group has room (group-queues.ts).
      if (member) this.groups.enqueue(member, q);
      else this.buckets.add(q);
      const deadline = queueDeadline(v.record);
      if (deadline !== undefined) this.queueDeadlines.set(job.id, deadline);
    } else if (job.state === JobState.JOB_STATE_WAITING && !v.record.held)
      this.waiting.set(job.id, job.notBefore ? Date.parse(job.notBefore) : 0);
    for (const key of new Set([left, group?.key])) if (key) for (const q of this.groups.release(key)) this.buckets.add(q);
  }

  private addActive(id: string, agent: string, v: Versioned): void {
    const spec = v.record.job.spec;
    const at = v.record.job.attempts.at(-1);
    const startedAt = Date.parse(at?.startedAt ?? at?.assignedAt ?? '') || undefined;
    const view: RunningAttemptView = { jobId: id, agent, qos: qosName(spec.qos), resources: spec.resources, startedAt };
    const unstartedSince = v.record.job.state === JobState.JOB_STATE_ASSIGNED ? (startedAt ?? 0) : undefined;
    this.active.set(id, { agent, attempt: v.record.job.attempt, view, unstartedSince });
    let set = this.byAgent.get(agent);
    if (!set) this.byAgent.set(agent, (set = new Set()));
    set.add(id);
    this.usage.set(agent, add(this.usage.get(agent) ?? ZERO, view.resources));
  }

  private dropActive(id: string): void {
    const a = this.active.get(id);
    if (!a) return;
    this.active.delete(id);
    this.byAgent.get(a.agent)?.delete(id);
    this.usage.set(a.agent, add(this.usage.get(a.agent) ?? ZERO, a.view.resources, -1));
  }

  /**
   * The queued jobs worth showing the router this round: the best `perBucket`
   * of each (QoS class, tenant) by priority then age. The router can place at
   * most as many jobs as there are free slots, so the rest would only cost time.
   */
  queueSlice(perBucket: number): QueuedJob[] {
    return this.buckets.head(perBucket);
  }

  usageOf(agent: string): Resources {
    return this.usage.get(agent) ?? ZERO;
  }

  /** Agents that hold at least one active attempt. */
  agentsWithAttempts(): string[] {
    return [...this.byAgent].filter(([, jobs]) => jobs.size > 0).map(([name]) => name);
  }

  /** Job ids with an active attempt on `agent`. */
  jobsOn(agent: string): string[] {
    return [...(this.byAgent.get(agent) ?? [])];
  }

  /** Attempts still ASSIGNED, with no news from their agent, since before `before` (ms). */
  unstarted(before: number): Array<{ jobId: string; agent: string; attempt: number }> {
    const out = [];
    for (const [jobId, a] of this.active)
      if (a.unstartedSince !== undefined && a.unstartedSince < before) out.push({ jobId, agent: a.agent, attempt: a.attempt });
    return out;
  }

  attemptOf(jobId: string): { agent: string; attempt: number } | undefined {
    return this.active.get(jobId);
  }

  running(): RunningAttemptView[] {
    return [...this.active.values()].map((a) => a.view);
  }

  get activeCount(): number {
    return this.active.size;
  }
}

/** What the router sees of a queued job. */
export function toQueued(r: JobRecord): QueuedJob {
  const spec = r.job.spec;
  return {
    id: r.job.id,
    selector: spec.selector,
    resources: spec.resources,
    qos: qosName(spec.qos),
    tenant: spec.tenant,
    priority: spec.priority,
    affinityKey: spec.affinityKey,
    strategy: strategyName(spec.strategy),
    executor: executorName(spec.executor),
    order: r.order,
    ...(r.job.avoidedAgents.length > 0 && { avoid: r.job.avoidedAgents }),
  };
}
