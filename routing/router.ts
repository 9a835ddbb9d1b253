/**
 * The router: a snapshot and the queue in, placements out. Per round it
 * serves QoS classes in order (critical, standard, batch); within a class,
 * tenants share by weight (deficit round robin) and a tenant's jobs go by
 * priority, then FIFO. Each job is matched through the snapshot's label
 * index, then placed by affinity (rendezvous hashing) or by its strategy. A
 * critical job that fits nowhere gets batch attempts preempted for it.
 *
 * State kept across rounds is only what the router learns: fair-share
 * deficits, parsed selectors, and the preemptions already asked for (so a
 * critical job does not claim fresh victims every round while the first
 * ones drain).
 */
import { FairShare } from './fair-share.js';
import { resolveRouterOptions, type ResolvedRouterOptions, type RouterOptions } from './options.js';
import { chooseVictims } from './preemption.js';
import { executorLabel } from '../proto/executor-labels.js';
import { badSelector, busy, capacityVerdict, noAgentMatches, noAgentOffers, preempting } from './reasons.js';
import { needOf, withinCapacity } from './resources.js';
import { Round } from './round.js';
import { parseSelector, type Selector } from './selector.js';
import type { CandidateSet, ClusterSnapshot } from './snapshot.js';
import { choose } from './strategy.js';
import type { Decision, Placement, Preemption, QosClass, QueuedJob, Resources } from './types.js';

export { ClusterSnapshot, snapshotOf } from './snapshot.js';
export type { RouterOptions } from './options.js';

const MAX_CACHED_SELECTORS = 10_000;

const CLASSES: readonly QosClass[] = ['critical', 'standard', 'batch'];

/** Preemptions asked for on behalf of one critical job, remembered until the victims are gone. */
interface Pending {
  readonly agent: string;
  readonly victims: readonly string[];
}

/** The candidates one job is placed among (Router.pool). */
interface Pool {
  readonly key: string;
  readonly cands: CandidateSet;
  /** Added to a waiting reason. */
  readonly note: string;
  /** Non-empty when the job's avoided agents are candidates again: why. */
  readonly fallback: string;
}

/** One round's outputs, filled as jobs are tried. */
interface Outcome {
  readonly placements: Placement[];
  readonly preemptions: Preemption[];
  readonly waiting: Map<string, string>;
  /** Victims chosen this round or still draining from earlier rounds. */
  readonly taken: Set<string>;
}

const byPriorityThenFifo = (a: QueuedJob, b: QueuedJob): number => b.priority - a.priority || a.order - b.order;

/** Splits the queue by class, then by tenant, each tenant's jobs in serving order. */
function partition(queue: readonly QueuedJob[]): Map<QosClass, Map<string, QueuedJob[]>> {
  const out = new Map<QosClass, Map<string, QueuedJob[]>>(CLASSES.map((c) => [c, new Map()]));
  for (const job of queue) {
    // Every class is in `out`; an unknown one (not a QosClass at run time) is served as standard.
    const tenants = (out.get(job.qos) ?? out.get('standard'))!;
    const list = tenants.get(job.tenant);
    if (list) list.push(job);
    else tenants.set(job.tenant, [job]);
  }
  for (const tenants of out.values()) for (const list of tenants.values()) list.sort(byPriorityThenFifo);
  return out;
}

/** Every agent runs shell jobs (it is the executor agents had before they advertised any); other executors need their label. */
const needsLabel = (job: QueuedJob): boolean => job.executor !== undefined && job.executor !== 'shell';

/** The selector a job is matched with: its own, plus its executor's label when that is not every agent's. */
export function selectorText(job: QueuedJob): string {
  if (!needsLabel(job)) return job.selector;
  const label = executorLabel(job.executor ?? 'shell');
  return job.selector.trim() === '' ? label : `${job.selector},${label}`;
}

export class Router {
  private o: ResolvedRouterOptions;
  private readonly fair = new Map<QosClass, FairShare>();
  private readonly selectors = new Map<string, Selector | string>();
  private pending = new Map<string, Pending>();

  constructor(private readonly options: RouterOptions = {}) {
    this.o = resolveRouterOptions(options);
    for (const c of CLASSES) this.fair.set(c, new FairShare((tenant) => this.o.weightOf(tenant)));
  }

  /** New fair-share weights from the next round on (a reloaded config file); throws RoutingOptionError for a bad one, changing nothing. */
  setTenantWeights(tenantWeights: Readonly<Record<string, number>>): void {
    this.o = resolveRouterOptions({ ...this.options, tenantWeights, random: this.o.random });
  }

  /**
   * Decides one round. `now` (ms) drives circuit-breaker cool-downs; without
   * it the health tracker's latest recorded time is used.
   */
  decide(snapshot: ClusterSnapshot, queue: readonly QueuedJob[], now?: number): Decision {
    const round = new Round(snapshot, this.o.health, now ?? this.o.health?.lastSeen ?? 0);
    const out: Outcome = { placements: [], preemptions: [], waiting: new Map(), taken: new Set() };
    this.carryPending(snapshot, out);
    const classes = partition(queue);
    for (const c of CLASSES) {
      const tenants = classes.get(c);
      if (tenants && tenants.size > 0) this.fair.get(c)?.run(tenants, (job) => this.place(round, job, out));
    }
    const queued = new Set(queue.map((j) => j.id));
    for (const id of [...this.pending.keys()]) if (!queued.has(id) || !out.waiting.has(id)) this.pending.delete(id);
    return { placements: out.placements, preemptions: out.preemptions, waiting: out.waiting };
  }

  /** Forgets victims that are no longer running; the rest stay claimed. */
  private carryPending(snapshot: ClusterSnapshot, out: Outcome): void {
    const next = new Map<string, Pending>();
    for (const [id, p] of this.pending) {
      const victims = p.victims.filter((v) => snapshot.runningIds.has(v));
      if (victims.length === 0) continue;
      next.set(id, { agent: p.agent, victims });
      for (const v of victims) out.taken.add(v);
    }
    this.pending = next;
  }

  /** Tries one job; true when placed. Otherwise records why it waits. */
  private place(round: Round, job: QueuedJob, out: Outcome): boolean {
    const own = this.selector(job.selector);
    if (typeof own === 'string') return this.wait(out, job, badSelector(own));
    // The executor's label joins the selector, so every memo keyed by selector text keys on both.
    const text = selectorText(job);
    const selector = text === job.selector ? own : this.selector(text);
    if (typeof selector === 'string') return this.wait(out, job, badSelector(selector));
    const snapshot = round.snapshot;
    const matched = snapshot.candidates(text, selector);
    if (matched.matching.length === 0) return this.wait(out, job, this.unmatched(snapshot, job, own));
    const need = needOf(job.resources);
    const { key, cands, note, fallback } = this.pool(snapshot, job, text, matched, need);
    const agent = this.pick(round, job, key, need, cands);
    if (agent >= 0) {
      round.take(agent, need);
      const name = snapshot.agents[agent]?.name ?? '';
      out.placements.push(
        fallback && job.avoid?.includes(name) ? { jobId: job.id, agent: name, note: fallback } : { jobId: job.id, agent: name },
      );
      return true;
    }
    const verdict = snapshot.verdict(key, need, () => capacityVerdict(snapshot, cands, need));
    if (verdict) return this.wait(out, job, verdict);
    if (job.qos === 'critical' && this.preempt(round, job, need, cands, out)) return false;
    return this.wait(out, job, round.busyReason(key, () => busy(round, cands)) + note);
  }

  /**
   * Host exclusion: the candidates without the agents the job avoids, while
   * one of the rest takes work and is large enough for it; else every
   * candidate, with `fallback` saying why an avoided one may take it. `key`
   * names the pool in the per-selector memos.
   */
  private pool(snapshot: ClusterSnapshot, job: QueuedJob, text: string, cands: CandidateSet, need: Resources): Pool {
    const avoid = job.avoid ?? [];
    if (avoid.length === 0) return { key: text, cands, note: '', fallback: '' };
    const key = `${text}\u0000avoid:${avoid.join(',')}`;
    const rest = snapshot.without(key, cands, avoid);
    const where = `${avoid.join(', ')}, where an earlier attempt failed`;
    if (rest.schedulable.some((i) => withinCapacity(need, snapshot.capacity[i] as Resources)))
      return { key, cands: rest, note: ` (avoiding ${where})`, fallback: '' };
    const fallback = `no other agent can take it, so it may run again on ${where}`;
    return { key: text, cands, note: ` (${fallback})`, fallback };
  }

  /** Why no agent matched: the job's own selector, or (when agents match it) the executor none of them offers. */
  private unmatched(snapshot: ClusterSnapshot, job: QueuedJob, own: Selector): string {
    if (!needsLabel(job) || snapshot.candidates(job.selector, own).matching.length === 0) return noAgentMatches(job.selector);
    return noAgentOffers(job.executor ?? 'shell', job.selector);
  }

  /** Affinity first (the rendezvous winner, when it fits and is healthy), then the strategy. */
  private pick(round: Round, job: QueuedJob, text: string, need: Resources, cands: CandidateSet): number {
    if (round.knownToFail(text, need)) return -1;
    if (job.affinityKey !== '') {
      const preferred = round.snapshot.preferred(text, job.affinityKey, cands);
      if (preferred >= 0 && round.fits(preferred, need)) return preferred;
    }
    const agent = choose(round, { text, cands, need, strategy: job.strategy }, this.o.random);
    if (agent < 0) round.noteFailure(text, need);
    return agent;
  }

  /** Claims (or keeps claiming) batch victims for a critical job; true when the job now waits on them. */
  private preempt(round: Round, job: QueuedJob, need: Resources, cands: CandidateSet, out: Outcome): boolean {
    const snapshot = round.snapshot;
    const earlier = this.pending.get(job.id);
    const at = earlier && snapshot.indexOf(earlier.agent);
    if (earlier && at !== undefined) {
      round.reserve(at, need);
      this.wait(out, job, preempting(earlier.victims.length, earlier.agent));
      return true;
    }
    const choice = chooseVictims(round, cands.schedulable, need, out.taken);
    if (!choice) return false;
    const agent = snapshot.agents[choice.agent]?.name ?? '';
    const victims = choice.victims.map((v) => v.view.jobId);
    for (const v of victims) {
      out.taken.add(v);
      out.preemptions.push({ victimJobId: v, agent, forJobId: job.id });
    }
    round.reserve(choice.agent, need);
    this.pending.set(job.id, { agent, victims });
    this.wait(out, job, preempting(victims.length, agent));
    return true;
  }

  private wait(out: Outcome, job: QueuedJob, reason: string): false {
    out.waiting.set(job.id, reason);
    return false;
  }

  /** The parsed selector, or the parse error's message (cached either way). */
  private selector(text: string): Selector | string {
    let s = this.selectors.get(text);
    if (s === undefined) {
      try {
        s = parseSelector(text);
      } catch (err) {
        s = (err as Error).message;
      }
      // Selector texts are few in practice; a flood of distinct ones must not grow memory without bound.
      if (this.selectors.size >= MAX_CACHED_SELECTORS) this.selectors.clear();
      this.selectors.set(text, s);
    }
    return s;
  }
}
