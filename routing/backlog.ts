/**
 * Backlog per label set, for autoscalers: for each set of labels queued jobs
 * require (a job's selector plus its executor's label, as the router matches
 * it), how many jobs wait and how many agents could take them now. Agents
 * are matched by the snapshot's own candidate sets, the ones the router
 * places with, so this count and placement never disagree.
 */
import { selectorText } from './router.js';
import { formatSelector, parseSelector, type Requirement } from './selector.js';
import type { ClusterSnapshot } from './snapshot.js';
import type { QueuedJob } from './types.js';

export interface LabelSetBacklog {
  /** The label set in canonical selector form (requirements sorted; '' matches every agent). */
  readonly selector: string;
  /** Queued jobs that require exactly this set. */
  readonly queued: number;
  /** Agents that match it and take new work now (not cordoned, draining, unhealthy or gone). */
  readonly agents: number;
  /** Free slots on those agents. */
  readonly freeSlots: number;
  /** Set when the selector does not parse: no agent can take these jobs. */
  readonly invalid?: string;
}

export interface Backlog {
  /** The largest label sets by queued jobs, at most `max` of them. */
  readonly sets: readonly LabelSetBacklog[];
  /** What did not fit in `max`: how many more label sets, and their queued jobs. */
  readonly omitted: { readonly sets: number; readonly queued: number };
}

/** Canonical text: the same requirements in any order are one label set. */
function canonical(text: string): { key: string; requirements: readonly Requirement[] } | { key: string; invalid: string } {
  try {
    const requirements = [...parseSelector(text)].sort((a, b) => cmp(formatSelector([a]), formatSelector([b])));
    return { key: formatSelector(requirements), requirements };
  } catch (err) {
    return { key: text, invalid: (err as Error).message };
  }
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** The backlog of `queued` against `snapshot`, largest label sets first (ties by selector), at most `max` sets. */
export function backlogByLabelSet(snapshot: ClusterSnapshot, queued: Iterable<QueuedJob>, max: number): Backlog {
  const counts = new Map<string, number>();
  for (const job of queued) {
    const text = selectorText(job);
    counts.set(text, (counts.get(text) ?? 0) + 1);
  }
  const sets = new Map<string, LabelSetBacklog>();
  for (const [text, n] of counts) {
    const c = canonical(text);
    const before = sets.get(c.key);
    if (before) sets.set(c.key, { ...before, queued: before.queued + n });
    else
      sets.set(c.key, 'invalid' in c ? { selector: c.key, queued: n, agents: 0, freeSlots: 0, invalid: c.invalid } : take(snapshot, c, n));
  }
  const ranked = [...sets.values()].sort((a, b) => b.queued - a.queued || cmp(a.selector, b.selector));
  const rest = ranked.slice(max);
  return { sets: ranked.slice(0, max), omitted: { sets: rest.length, queued: rest.reduce((n, s) => n + s.queued, 0) } };
}

function take(snapshot: ClusterSnapshot, c: { key: string; requirements: readonly Requirement[] }, queued: number): LabelSetBacklog {
  const { schedulable } = snapshot.candidates(c.key, c.requirements);
  let freeSlots = 0;
  for (const i of schedulable) freeSlots += Math.max(0, snapshot.freeSlots[i] ?? 0);
  return { selector: c.key, queued, agents: schedulable.length, freeSlots };
}
