/**
 * Choosing batch attempts to preempt for a critical job that fits nowhere:
 * on one matching agent, the victims whose release makes the job fit —
 * fewest victims first, then least work lost (the newest attempts). Only
 * batch attempts are ever victims; critical and standard work is never touched.
 */
import { fitsIn, withinCapacity } from './resources.js';
import type { Round } from './round.js';
import type { RankedAttempt } from './snapshot.js';
import type { Resources } from './types.js';

export interface VictimChoice {
  readonly agent: number;
  readonly victims: readonly RankedAttempt[];
}

const bySizeThenNewest = (a: RankedAttempt, b: RankedAttempt): number =>
  b.view.resources.slots - a.view.resources.slots ||
  b.view.resources.cpuMillis - a.view.resources.cpuMillis ||
  b.view.resources.memoryMb - a.view.resources.memoryMb ||
  b.rank - a.rank;

const newestFirst = (a: RankedAttempt, b: RankedAttempt): number => b.rank - a.rank;

/** Takes victims in `order` until `need` fits in what is free plus what they release. */
function cover(free: Resources, cap: Resources, need: Resources, order: readonly RankedAttempt[]): RankedAttempt[] | undefined {
  let slots = free.slots;
  let cpu = free.cpuMillis;
  let mem = free.memoryMb;
  const taken: RankedAttempt[] = [];
  for (const v of order) {
    if (fitsIn(need, { slots, cpuMillis: cpu, memoryMb: mem }, cap)) return taken;
    taken.push(v);
    slots += Math.max(1, v.view.resources.slots);
    cpu += v.view.resources.cpuMillis;
    mem += v.view.resources.memoryMb;
  }
  return fitsIn(need, { slots, cpuMillis: cpu, memoryMb: mem }, cap) ? taken : undefined;
}

const rankSum = (vs: readonly RankedAttempt[]): number => vs.reduce((n, v) => n + v.rank, 0);

/** True when `a` is a better victim set than `b`: fewer, then newer in total. */
const better = (a: readonly RankedAttempt[], b: readonly RankedAttempt[] | undefined): boolean =>
  !b || a.length < b.length || (a.length === b.length && rankSum(a) > rankSum(b));

/** Victims on agent `i`, or undefined when even all its batch attempts would not make room. */
function onAgent(r: Round, i: number, need: Resources, taken: ReadonlySet<string>): RankedAttempt[] | undefined {
  const cap = r.snapshot.capacity[i] as Resources;
  if (!withinCapacity(need, cap)) return undefined;
  const batch = r.snapshot.batchOn(i).filter((v) => !taken.has(v.view.jobId));
  if (batch.length === 0) return undefined;
  const free = r.freeOf(i);
  // Largest-first gives the fewest victims; newest-first loses the least work. Keep the better.
  const bySize = cover(free, cap, need, [...batch].sort(bySizeThenNewest));
  const byAge = cover(free, cap, need, [...batch].sort(newestFirst));
  if (!bySize) return undefined;
  return byAge && !better(bySize, byAge) ? byAge : bySize;
}

/**
 * The best agent and victims among `pool` for `need`, skipping attempts
 * already chosen this round (`taken`), or undefined when none makes room.
 */
export function chooseVictims(r: Round, pool: Int32Array, need: Resources, taken: ReadonlySet<string>): VictimChoice | undefined {
  let best: VictimChoice | undefined;
  for (const i of pool) {
    if (!r.admitted(i)) continue;
    const victims = onAgent(r, i, need, taken);
    if (victims && victims.length > 0 && better(victims, best?.victims)) best = { agent: i, victims };
  }
  return best;
}
