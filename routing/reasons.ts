/**
 * Why a job is still waiting, in words an operator can act on. Reasons that
 * start with `unschedulable:` mean no agent in the cluster could ever run the
 * job as asked; everything else is a transient wait.
 */
import { withinCapacity } from './resources.js';
import type { Round } from './round.js';
import type { CandidateSet, ClusterSnapshot } from './snapshot.js';
import type { Resources } from './types.js';

export const UNSCHEDULABLE = 'unschedulable:';

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

/** The empty selector matches every agent, so only an empty cluster leaves it unmatched: a transient wait. */
export const noAgentMatches = (selectorText: string): string =>
  selectorText.trim() === '' ? 'waiting: no agent connected' : `${UNSCHEDULABLE} no agent matches ${selectorText.trim()}`;

/** Agents match the selector, but none of them offers the job's executor. */
export const noAgentOffers = (executor: string, selectorText: string): string =>
  `${UNSCHEDULABLE} no agent${selectorText.trim() === '' ? '' : ` matching ${selectorText.trim()}`} offers the ${executor} executor`;

export const badSelector = (message: string): string => `${UNSCHEDULABLE} invalid selector: ${message}`;

export const preempting = (victims: number, agent: string): string => `preempting ${plural(victims, 'batch attempt')} on ${agent}`;

/** Largest capacity in one dimension among `pool`; Infinity when some agent does not track it. */
function largest(snapshot: ClusterSnapshot, pool: Int32Array, dim: keyof Resources): number {
  let max = 0;
  for (const i of pool) {
    const c = snapshot.capacity[i]?.[dim] ?? 0;
    if (c === 0 && dim !== 'slots') return Infinity;
    if (c > max) max = c;
  }
  return max;
}

/** An `unschedulable:` reason when no matching agent's capacity holds `need`, else null. */
export function capacityVerdict(snapshot: ClusterSnapshot, cands: CandidateSet, need: Resources): string | null {
  for (const i of cands.matching) if (withinCapacity(need, snapshot.capacity[i] as Resources)) return null;
  const dims: Array<[keyof Resources, string]> = [
    ['memoryMb', 'MB memory'],
    ['cpuMillis', 'millicpu'],
    ['slots', 'slots'],
  ];
  for (const [dim, unit] of dims) {
    const max = largest(snapshot, cands.matching, dim);
    if (need[dim] > max) return `${UNSCHEDULABLE} needs ${need[dim]} ${unit}, largest matching agent has ${max}`;
  }
  return `${UNSCHEDULABLE} no matching agent has ${need.slots} slots, ${need.cpuMillis} millicpu and ${need.memoryMb} MB memory at once`;
}

/** "the 1 matching agent is" / "all 3 matching agents are". */
const allOf = (n: number): string => (n === 1 ? 'the 1 matching agent is' : `all ${n} matching agents are`);

/** A transient reason: every matching agent is busy, cordoned or skipped by its circuit breaker. */
export function busy(r: Round, cands: CandidateSet): string {
  const matching = cands.matching.length;
  const open = cands.schedulable.length;
  if (open === 0) return `waiting: ${allOf(matching)} cordoned, draining, unhealthy or disconnected`;
  const tripped = r.trippedIn(cands.schedulable);
  if (tripped === open) return `waiting: ${allOf(open)} skipped by a circuit breaker`;
  const note = tripped > 0 ? ` (${tripped} skipped by a circuit breaker)` : '';
  return `waiting: ${allOf(open)} busy${note}`;
}
