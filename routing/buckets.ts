/**
 * Best-fit search for binpack: a selector's candidates bucketed by free
 * slots, scanned from the smallest bucket that can hold the need. Free slots
 * only shrink within a round, so an agent found in too high a bucket is moved
 * down lazily when met. Among agents left equally full, the first few that
 * fit are compared on cpu/memory fullness and health; scanning a whole bucket
 * for that tie-break would make binpack linear in the cluster.
 */
import type { ClusterSnapshot } from './snapshot.js';
import type { Resources } from './types.js';

/** What the buckets read of the round they serve (a Round; kept narrow so the two files do not import each other). */
export interface RoundState {
  readonly snapshot: Pick<ClusterSnapshot, 'capSlots' | 'capCpu' | 'capMem'>;
  readonly freeSlots: Float64Array;
  readonly freeCpu: Float64Array;
  readonly freeMem: Float64Array;
  /** Score cost from health (0 = healthy). */
  readonly penalty: Float64Array;
  /** True when agent `i` may take nothing more this round. */
  spent(i: number): boolean;
  /** True when `need` fits on agent `i` now. */
  fits(i: number, need: Resources): boolean;
}

/** Fitting agents compared at the best level before settling. */
const TIE_SCAN = 8;

export class SlotBuckets {
  private readonly buckets: number[][];

  constructor(
    private readonly r: RoundState,
    items: Int32Array,
  ) {
    let max = 0;
    for (const i of items) max = Math.max(max, r.snapshot.capSlots[i] ?? 0, r.freeSlots[i] ?? 0);
    this.buckets = Array.from({ length: Math.floor(max) + 1 }, () => []);
    for (const i of items) if (!r.spent(i)) this.bucketAt(r.freeSlots[i] ?? 0).push(i);
  }

  /** The agent that fits `need` leaving the fewest free slots, or -1. */
  bestFit(need: Resources): number {
    let best = -1;
    let bestLevel = Infinity;
    let bestScore = -Infinity;
    let ties = 0;
    for (let s = Math.max(1, need.slots); s < this.buckets.length && s <= bestLevel && ties < TIE_SCAN; s++) {
      const bucket = this.buckets[s] as number[];
      for (let pos = 0; pos < bucket.length && ties < TIE_SCAN;) {
        const i = bucket[pos] as number;
        const level = Math.floor(this.r.freeSlots[i] ?? 0);
        if (this.r.spent(i) || level !== s) {
          bucket[pos] = bucket[bucket.length - 1] as number;
          bucket.pop();
          if (this.r.spent(i)) continue;
          this.bucketAt(level).push(i);
          // Fuller than this bucket yet still roomy enough: a better fit, judge it now.
          if (level > s || level < need.slots) continue;
        } else pos++;
        if (!this.r.fits(i, need)) continue;
        const score = this.tieScore(i, need);
        if (level < bestLevel) [best, bestLevel, bestScore, ties] = [i, level, score, 1];
        else if (level === bestLevel) {
          ties++;
          if (score > bestScore) [best, bestScore] = [i, score];
        }
      }
    }
    return best;
  }

  /** Higher is better: cpu/memory fullness after placing `need`, less the health cost. */
  private tieScore(i: number, need: Resources): number {
    const s = this.r.snapshot;
    const capCpu = s.capCpu[i] ?? 0;
    const capMem = s.capMem[i] ?? 0;
    let full = 0;
    if (capCpu > 0) full = Math.max(full, 1 - ((this.r.freeCpu[i] ?? 0) - need.cpuMillis) / capCpu);
    if (capMem > 0) full = Math.max(full, 1 - ((this.r.freeMem[i] ?? 0) - need.memoryMb) / capMem);
    return full - (this.r.penalty[i] ?? 0);
  }

  private bucketAt(free: number): number[] {
    return this.buckets[Math.max(0, Math.min(this.buckets.length - 1, Math.floor(free)))] as number[];
  }
}
