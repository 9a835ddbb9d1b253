import { matches, parseSelector, type Selector } from './selector.js';
import type { AgentView, Decision, Placement, QueuedJob, Resources, RunningAttemptView } from './types.js';

/** An immutable view of the cluster; replaced whole, never edited. */
export interface ClusterSnapshot {
  readonly agents: readonly AgentView[];
  readonly running: readonly RunningAttemptView[];
}

export function snapshotOf(agents: readonly AgentView[], running: readonly RunningAttemptView[] = []): ClusterSnapshot {
  return Object.freeze({ agents: Object.freeze([...agents]), running: Object.freeze([...running]) });
}

const fits = (need: Resources, free: Resources): boolean =>
  need.slots <= free.slots &&
  (need.cpuMillis === 0 || need.cpuMillis <= free.cpuMillis) &&
  (need.memoryMb === 0 || need.memoryMb <= free.memoryMb);

const minus = (a: Resources, b: Resources): Resources => ({
  slots: a.slots - b.slots,
  cpuMillis: Math.max(0, a.cpuMillis - b.cpuMillis),
  memoryMb: Math.max(0, a.memoryMb - b.memoryMb),
});

/**
 * Places queued jobs. Stateful across rounds only in what it learns (selector
 * cache); every decision is a function of (snapshot, queue).
 */
export class Router {
  private readonly selectors = new Map<string, Selector>();

  decide(snapshot: ClusterSnapshot, queue: readonly QueuedJob[]): Decision {
    const free = new Map(snapshot.agents.filter((a) => a.schedulable).map((a) => [a.name, a.free]));
    const placements: Placement[] = [];
    const waiting = new Map<string, string>();
    const ordered = [...queue].sort((a, b) => b.priority - a.priority || a.order - b.order);
    for (const job of ordered) {
      const selector = this.selector(job.selector);
      const candidates = snapshot.agents.filter((a) => matches(selector, a.labels));
      if (candidates.length === 0) {
        waiting.set(job.id, job.selector ? `no agent matches ${job.selector}` : 'no agent connected');
        continue;
      }
      const chosen = candidates.find((a) => fits(job.resources, free.get(a.name) ?? a.free) && free.has(a.name));
      if (!chosen) {
        waiting.set(job.id, 'all matching agents are busy');
        continue;
      }
      free.set(chosen.name, minus(free.get(chosen.name) ?? chosen.free, job.resources));
      placements.push({ jobId: job.id, agent: chosen.name });
    }
    return { placements, preemptions: [], waiting };
  }

  private selector(text: string): Selector {
    let s = this.selectors.get(text);
    if (!s) {
      s = parseSelector(text);
      this.selectors.set(text, s);
    }
    return s;
  }
}
