/**
 * Choosing one agent among a selector's candidates for one need.
 * `spread`: power of two choices — two random candidates that fit, keep the
 * one with less utilisation, load and health cost; spent agents are shed
 * from the live list as they are met. `binpack`: best fit — the agent left
 * with the fewest free slots (see buckets.ts).
 */
import type { RandomSource } from './random.js';
import { dropAt, type LiveList, type Round } from './round.js';
import type { CandidateSet } from './snapshot.js';
import type { Resources, StrategyName } from './types.js';

/** Random draws before spread falls back to a scan for its two choices. */
const SPREAD_DRAWS = 8;

/** Lower is better: utilisation of slots, host load and health cost. */
function spreadCost(r: Round, i: number): number {
  const cap = r.snapshot.capSlots[i] || 1;
  return 1 - (r.freeSlots[i] ?? 0) / cap + (r.snapshot.load[i] ?? 0) + (r.penalty[i] ?? 0);
}

/** Up to two distinct fitting agents, scanning from a random offset; sheds spent ones. */
function scanTwo(r: Round, list: LiveList, need: Resources, random: RandomSource, first: number): [number, number] {
  let a = first;
  let pos = Math.floor(random() * list.length);
  for (let seen = 0; seen < list.length && list.length > 0; seen++) {
    if (pos >= list.length) pos = 0;
    const i = list.items[pos] ?? -1;
    if (r.spent(i)) {
      dropAt(list, pos);
      seen--;
      continue;
    }
    if (i !== a && r.fits(i, need)) {
      if (a < 0) a = i;
      else return [a, i];
    }
    pos++;
  }
  return [a, -1];
}

function spread(r: Round, list: LiveList, need: Resources, random: RandomSource): number {
  let a = -1;
  let b = -1;
  for (let d = 0; d < SPREAD_DRAWS && b < 0 && list.length > 0; d++) {
    const pos = Math.floor(random() * list.length);
    const i = list.items[pos] ?? -1;
    if (r.spent(i)) dropAt(list, pos);
    else if (i === a || !r.fits(i, need)) continue;
    else if (a < 0) a = i;
    else b = i;
  }
  if (b < 0) [a, b] = scanTwo(r, list, need, random, a);
  if (a < 0 || b < 0) return a;
  return spreadCost(r, b) < spreadCost(r, a) ? b : a;
}

/** What a job asks of one choice: room for `need` among the candidates of selector `text`, placed by `strategy`. */
export interface Choice {
  text: string;
  cands: CandidateSet;
  need: Resources;
  strategy: StrategyName;
}

/** The agent for a choice's need under its strategy among its selector's candidates, or -1 when none fits. */
export function choose(r: Round, { text, cands, need, strategy }: Choice, random: RandomSource): number {
  if (strategy === 'binpack') return r.slotBuckets(text, cands).bestFit(need);
  return spread(r, r.liveList(text, cands), need, random);
}
