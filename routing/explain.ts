/**
 * "Why is it waiting?" in detail, for a person: the router's own matching
 * (the job's selector plus its executor's label, `selectorText`), taken term
 * by term. Which terms no agent satisfies; and, of the agents that match the
 * whole selector, why each cannot take the job now: not schedulable
 * (cordoned, draining, unhealthy, disconnected), skipped by its circuit
 * breaker, or full for what the job needs. Pure, like the router.
 */
import { fitsIn, needOf, withinCapacity } from './resources.js';
import { selectorText } from './router.js';
import { formatSelector, holds, parseSelector } from './selector.js';
import type { ClusterSnapshot } from './snapshot.js';
import type { QueuedJob } from './types.js';

export interface WaitDetail {
  /** Selector terms (the executor's label among them) that no agent in the snapshot satisfies. */
  unmatchedTerms: string[];
  /** Agents matching the whole selector, and why each cannot take the job now ('' when it could). */
  matching: Array<{ agent: string; why: string }>;
}

/** Matching agents listed at most (a big pool says the same thing many times). */
const MAX_MATCHING = 50;

/** `breakerOpen(agent)`: the agent's circuit breaker skips it now. */
export function explainWait(snapshot: ClusterSnapshot, job: QueuedJob, breakerOpen: (agent: string) => boolean): WaitDetail {
  const text = selectorText(job);
  let selector;
  try {
    selector = parseSelector(text);
  } catch (err) {
    return { unmatchedTerms: [`invalid selector: ${(err as Error).message}`], matching: [] };
  }
  const unmatchedTerms = selector.filter((r) => !snapshot.agents.some((a) => holds(r, a.labels))).map((r) => formatSelector([r]));
  const need = needOf(job.resources);
  const cands = snapshot.candidates(text, selector);
  const matching = [...cands.matching].slice(0, MAX_MATCHING).map((i) => {
    const a = snapshot.agents[i]!;
    // An avoided agent that could take the job: it waits for another (host exclusion, router.ts `pool`).
    const avoided = job.avoid?.includes(a.name) ? AVOIDED : '';
    return { agent: a.name, why: whyNot(a, need, breakerOpen) || avoided };
  });
  return { unmatchedTerms, matching };
}

const AVOIDED = 'avoided: an earlier attempt of this job failed there (taken only when no other agent can take the job)';

function whyNot(a: ClusterSnapshot['agents'][number], need: QueuedJob['resources'], breakerOpen: (agent: string) => boolean): string {
  if (!a.schedulable) return 'cordoned, draining, unhealthy or disconnected';
  if (breakerOpen(a.name)) return 'skipped by its circuit breaker (recent infrastructure failures)';
  if (!withinCapacity(need, a.capacity)) return `too small: has ${fmt(a.capacity)}, the job needs ${fmt(need)}`;
  if (!fitsIn(need, a.free, a.capacity)) return `full: ${fmt(a.free)} free, the job needs ${fmt(need)}`;
  return '';
}

const fmt = (r: QueuedJob['resources']): string =>
  [`${r.slots} slots`, ...(r.cpuMillis ? [`${r.cpuMillis} millicpu`] : []), ...(r.memoryMb ? [`${r.memoryMb} MB`] : [])].join(', ');
