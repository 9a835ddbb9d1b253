/**
 * The mutable state of one `decide` round: free resources as placements are
 * made (so nothing is over-committed), which agents the circuit breaker
 * admits, per-selector live candidate lists that shed full agents as they
 * fill, and the needs already known not to fit. Free resources only shrink
 * within a round, so a need that failed for a selector fails again for any
 * need at least as large: that memo keeps a saturated round linear.
 */
import { SlotBuckets } from './buckets.js';
import type { HealthTracker } from './health.js';
import { dominates } from './resources.js';
import type { CandidateSet, ClusterSnapshot } from './snapshot.js';
import type { Resources } from './types.js';

/** What the circuit breaker lets through to an agent this round (one byte per agent). */
const enum Gate {
  Open = 0,
  Skip = 1,
  Probe = 2,
}

/**
 * A selector's schedulable candidates still worth trying; spent agents are
 * swapped out. It starts as the snapshot's own array and is copied on the
 * first removal, so a round that touches a selector once pays nothing.
 */
export interface LiveList {
  items: Int32Array;
  length: number;
  owned: boolean;
}

export class Round {
  readonly freeSlots: Float64Array;
  readonly freeCpu: Float64Array;
  readonly freeMem: Float64Array;
  /** Score cost from health (0 = healthy). */
  readonly penalty: Float64Array;
  private readonly gate: Uint8Array;
  /** Skipped by the circuit breaker (kept apart from other skips for the reasons). */
  private readonly tripped: Uint8Array;
  private readonly live = new Map<string, LiveList>();
  private readonly buckets = new Map<string, SlotBuckets>();
  private readonly failed = new Map<string, Resources[]>();
  private readonly busyReasons = new Map<string, string>();

  constructor(
    readonly snapshot: ClusterSnapshot,
    private readonly health: HealthTracker | undefined,
    private readonly now: number,
  ) {
    const n = snapshot.agents.length;
    this.freeSlots = snapshot.freeSlots.slice();
    this.freeCpu = snapshot.freeCpu.slice();
    this.freeMem = snapshot.freeMem.slice();
    this.penalty = new Float64Array(n);
    this.gate = new Uint8Array(n).fill(Gate.Open);
    this.tripped = new Uint8Array(n);
    if (health) this.applyHealth(health);
  }

  /** True when `need` fits on agent `i` now and the agent may take work. */
  fits(i: number, need: Resources): boolean {
    if (this.gate[i] === Gate.Skip || need.slots > (this.freeSlots[i] ?? 0)) return false;
    const s = this.snapshot;
    return (
      (need.cpuMillis === 0 || s.capCpu[i] === 0 || need.cpuMillis <= (this.freeCpu[i] ?? 0)) &&
      (need.memoryMb === 0 || s.capMem[i] === 0 || need.memoryMb <= (this.freeMem[i] ?? 0))
    );
  }

  freeOf(i: number): Resources {
    return { slots: this.freeSlots[i] ?? 0, cpuMillis: this.freeCpu[i] ?? 0, memoryMb: this.freeMem[i] ?? 0 };
  }

  /** True when the breaker lets agent `i` take work (admitted or as the probe). */
  admitted(i: number): boolean {
    return this.gate[i] !== Gate.Skip;
  }

  /** Commits `need` on agent `i`; a half-open agent's one probe is used up. */
  take(i: number, need: Resources): void {
    this.freeSlots[i] = (this.freeSlots[i] ?? 0) - need.slots;
    this.freeCpu[i] = (this.freeCpu[i] ?? 0) - need.cpuMillis;
    this.freeMem[i] = (this.freeMem[i] ?? 0) - need.memoryMb;
    if (this.gate[i] === Gate.Probe) {
      this.gate[i] = Gate.Skip;
      this.health?.beginProbe(this.snapshot.agents[i]?.name ?? '', this.now);
    }
  }

  /** Holds what is free on agent `i`, up to `need`, for a job waiting on preemption there. */
  reserve(i: number, need: Resources): void {
    this.freeSlots[i] = (this.freeSlots[i] ?? 0) - Math.min(Math.max(0, this.freeSlots[i] ?? 0), need.slots);
    this.freeCpu[i] = (this.freeCpu[i] ?? 0) - Math.min(Math.max(0, this.freeCpu[i] ?? 0), need.cpuMillis);
    this.freeMem[i] = (this.freeMem[i] ?? 0) - Math.min(Math.max(0, this.freeMem[i] ?? 0), need.memoryMb);
  }

  /** The live list for a selector, created on first use this round. */
  liveList(text: string, cands: CandidateSet): LiveList {
    let list = this.live.get(text);
    if (!list) {
      list = { items: cands.schedulable, length: cands.schedulable.length, owned: false };
      this.live.set(text, list);
    }
    return list;
  }

  /** The best-fit buckets for a selector, created on first use this round. */
  slotBuckets(text: string, cands: CandidateSet): SlotBuckets {
    let b = this.buckets.get(text);
    if (!b) this.buckets.set(text, (b = new SlotBuckets(this, cands.schedulable)));
    return b;
  }

  /** Memoised per selector: the breaker state behind a busy reason is fixed for the round. */
  busyReason(text: string, compute: () => string): string {
    let r = this.busyReasons.get(text);
    if (r === undefined) this.busyReasons.set(text, (r = compute()));
    return r;
  }

  /** True when agent `i` can take no job at all this round (so live lists may drop it). */
  spent(i: number): boolean {
    return this.gate[i] === Gate.Skip || (this.freeSlots[i] ?? 0) <= 0;
  }

  knownToFail(text: string, need: Resources): boolean {
    const list = this.failed.get(text);
    if (!list) return false;
    for (const f of list) if (dominates(need, f)) return true;
    return false;
  }

  noteFailure(text: string, need: Resources): void {
    const list = this.failed.get(text);
    if (list) list.push(need);
    else this.failed.set(text, [need]);
  }

  /** How many of `pool` the circuit breaker skips this round. */
  trippedIn(pool: Int32Array): number {
    let n = 0;
    for (const i of pool) n += this.tripped[i] ?? 0;
    return n;
  }

  private applyHealth(health: HealthTracker): void {
    for (const name of health.known()) {
      const i = this.snapshot.indexOf(name);
      if (i === undefined) continue;
      this.penalty[i] = health.penalty(name);
      const a = health.admission(name, this.now);
      if (a === 'skip') [this.gate[i], this.tripped[i]] = [Gate.Skip, 1];
      else if (a === 'probe') this.gate[i] = Gate.Probe;
    }
  }
}

/** Swap-removes position `pos` from a live list. */
export function dropAt(list: LiveList, pos: number): void {
  if (!list.owned) [list.items, list.owned] = [list.items.slice(0, list.length), true];
  list.length--;
  list.items[pos] = list.items[list.length] ?? 0;
}
