/**
 * The immutable cluster snapshot the router decides against. The scheduler
 * builds a new one per round and swaps the reference whole (read-copy-update),
 * so a decision never sees half an update. Built once, it carries indices:
 * a label index (key → value → agents) so a selector intersects candidate
 * sets instead of scanning every agent, a sorted name index for prefix
 * lookups, and typed arrays of capacity, free resources and load. Derived
 * answers (candidates per selector, rendezvous winners, capacity verdicts)
 * are memoised inside; they are functions of the snapshot, so memoising them
 * changes nothing observable.
 */
import { agentSeed, fnv1a, rendezvous } from './hash.js';
import { matches, type Requirement, type Selector } from './selector.js';
import type { AgentView, QosClass, Resources, RunningAttemptView } from './types.js';

/** Agent indices (into `snapshot.agents`, ascending) that a selector matches. */
export interface CandidateSet {
  /** Every matching agent, schedulable or not: the base of "could ever run" verdicts. */
  readonly matching: Int32Array;
  /** The matching agents that take new work now. */
  readonly schedulable: Int32Array;
}

/** A running attempt with its age rank: a larger rank is newer (less work lost if preempted). */
export interface RankedAttempt {
  readonly view: RunningAttemptView;
  readonly rank: number;
}

const EMPTY = new Int32Array(0);

/** The value under `key`, made and stored on first use. */
function child<K, V>(m: Map<K, V>, key: K, make: () => V): V {
  let v = m.get(key);
  if (v === undefined) m.set(key, (v = make()));
  return v;
}

function buildLabelIndex(agents: readonly AgentView[]): Map<string, Map<string, Int32Array>> {
  const raw = new Map<string, Map<string, number[]>>();
  agents.forEach((a, i) => {
    for (const [k, v] of Object.entries(a.labels)) {
      let byValue = raw.get(k);
      if (!byValue) raw.set(k, (byValue = new Map<string, number[]>()));
      const list = byValue.get(v);
      if (list) list.push(i);
      else byValue.set(v, [i]);
    }
  });
  const index = new Map<string, Map<string, Int32Array>>();
  for (const [k, byValue] of raw) index.set(k, new Map([...byValue].map(([v, l]) => [v, Int32Array.from(l)])));
  return index;
}

function runningOnAgents(
  running: readonly RunningAttemptView[],
  byName: ReadonlyMap<string, number>,
  qos: QosClass,
): Map<number, RankedAttempt[]> {
  const out = new Map<number, RankedAttempt[]>();
  running.forEach((view, position) => {
    const i = byName.get(view.agent);
    if (i === undefined || view.qos !== qos) return;
    const list = out.get(i) ?? [];
    list.push({ view, rank: view.startedAt ?? position });
    out.set(i, list);
  });
  return out;
}

/**
 * What a snapshot derives from the agents' identities alone (names, labels,
 * capacity): the costly part to build, about 2 µs per agent. Shared by every
 * later snapshot of the same agents, which rebuilds only free resources, load
 * and what depends on them.
 */
class AgentIndex {
  readonly capacity: readonly Resources[];
  readonly capSlots: Float64Array;
  readonly capCpu: Float64Array;
  readonly capMem: Float64Array;
  readonly seeds: Uint32Array;
  readonly byName: ReadonlyMap<string, number>;
  readonly sortedNames: readonly string[];
  readonly labels: ReadonlyMap<string, ReadonlyMap<string, Int32Array>>;
  readonly all: Int32Array;

  constructor(readonly agents: readonly AgentView[]) {
    const n = agents.length;
    this.capacity = agents.map((a) => a.capacity);
    this.capSlots = new Float64Array(n);
    this.capCpu = new Float64Array(n);
    this.capMem = new Float64Array(n);
    this.seeds = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      const a = agents[i]!;
      this.capSlots[i] = a.capacity.slots;
      this.capCpu[i] = a.capacity.cpuMillis;
      this.capMem[i] = a.capacity.memoryMb;
      this.seeds[i] = agentSeed(a.name);
    }
    this.byName = new Map(agents.map((a, i) => [a.name, i]));
    this.sortedNames = agents.map((a) => a.name).sort();
    this.labels = buildLabelIndex(agents);
    this.all = Int32Array.from({ length: n }, (_, i) => i);
  }

  /** True when `agents` are the same agents, in the same order, with the same labels and capacity objects. */
  fits(agents: readonly AgentView[]): boolean {
    if (agents.length !== this.agents.length) return false;
    for (let i = 0; i < agents.length; i++) {
      const a = agents[i]!;
      const b = this.agents[i]!;
      if (a.name !== b.name || a.labels !== b.labels || a.capacity !== b.capacity) return false;
    }
    return true;
  }
}

export class ClusterSnapshot {
  readonly agents: readonly AgentView[];
  readonly running: readonly RunningAttemptView[];
  readonly capacity: readonly Resources[];
  readonly capSlots: Float64Array;
  readonly capCpu: Float64Array;
  readonly capMem: Float64Array;
  readonly freeSlots: Float64Array;
  readonly freeCpu: Float64Array;
  readonly freeMem: Float64Array;
  readonly load: Float64Array;
  /** Each agent's rendezvous seed (from its name). */
  readonly seeds: Uint32Array;
  /** Job ids of every running attempt. */
  readonly runningIds: ReadonlySet<string>;
  private readonly batch: ReadonlyMap<number, readonly RankedAttempt[]>;
  /** The identity-derived part, for the next snapshot of the same agents. */
  readonly index: AgentIndex;
  private readonly memo = {
    candidates: new Map<string, CandidateSet>(),
    /** Selector text → affinity key → winner. */
    preferred: new Map<string, Map<string, number>>(),
    /** Selector text → slots → cpu → memory → verdict. */
    verdicts: new Map<string, Map<number, Map<number, Map<number, string | null>>>>(),
  };

  constructor(agents: readonly AgentView[], running: readonly RunningAttemptView[], previous?: ClusterSnapshot) {
    this.agents = Object.freeze([...agents]);
    this.running = Object.freeze([...running]);
    const n = this.agents.length;
    const index = previous?.index.fits(this.agents) ? previous.index : new AgentIndex(this.agents);
    this.index = index;
    ({ capacity: this.capacity, capSlots: this.capSlots, capCpu: this.capCpu, capMem: this.capMem, seeds: this.seeds } = index);
    this.freeSlots = new Float64Array(n);
    this.freeCpu = new Float64Array(n);
    this.freeMem = new Float64Array(n);
    this.load = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const a = this.agents[i]!;
      this.freeSlots[i] = a.free.slots;
      this.freeCpu[i] = a.free.cpuMillis;
      this.freeMem[i] = a.free.memoryMb;
      this.load[i] = a.load;
    }
    this.batch = runningOnAgents(this.running, index.byName, 'batch');
    this.runningIds = new Set(this.running.map((r) => r.jobId));
    Object.freeze(this);
  }

  /** The index of the agent called `name`, if it is in this snapshot. */
  indexOf(name: string): number | undefined {
    return this.index.byName.get(name);
  }

  /** Agents whose name starts with `prefix`, in name order (binary search on the sorted names). */
  agentsWithPrefix(prefix: string): readonly AgentView[] {
    let lo = 0;
    let hi = this.index.sortedNames.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.index.sortedNames[mid] ?? '') < prefix) lo = mid + 1;
      else hi = mid;
    }
    const out: AgentView[] = [];
    for (let i = lo; i < this.index.sortedNames.length; i++) {
      const name = this.index.sortedNames[i] ?? '';
      if (!name.startsWith(prefix)) break;
      const at = this.index.byName.get(name);
      if (at !== undefined) out.push(this.agents[at] as AgentView);
    }
    return out;
  }

  /** Agents matching `selector` (its text is the memo key). */
  candidates(text: string, selector: Selector): CandidateSet {
    let set = this.memo.candidates.get(text);
    if (!set) {
      const matching = this.select(selector);
      const schedulable = matching.filter((i) => this.agents[i]?.schedulable === true);
      set = Object.freeze({ matching, schedulable });
      this.memo.candidates.set(text, set);
    }
    return set;
  }

  /**
   * `cands` without the agents named (a job's avoided agents), memoised under
   * `key`: a text no selector has (it holds a NUL), naming the selector and the agents.
   */
  without(key: string, cands: CandidateSet, names: readonly string[]): CandidateSet {
    let set = this.memo.candidates.get(key);
    if (!set) {
      const skip = new Set(names.map((n) => this.indexOf(n)));
      set = Object.freeze({
        matching: cands.matching.filter((i) => !skip.has(i)),
        schedulable: cands.schedulable.filter((i) => !skip.has(i)),
      });
      this.memo.candidates.set(key, set);
    }
    return set;
  }

  /**
   * The rendezvous (HRW) winner for `key` among a selector's schedulable
   * candidates, or -1 when there are none: one xor and one finaliser per
   * candidate, memoised per (selector, key) for the snapshot's life.
   */
  preferred(text: string, key: string, cands: CandidateSet): number {
    const byKey = child(this.memo.preferred, text, () => new Map<string, number>());
    return child(byKey, key, () => {
      const h = fnv1a(key);
      let best = -1;
      let top = -1;
      for (const i of cands.schedulable) {
        const w = rendezvous(h, this.seeds[i] ?? 0);
        if (w > top) [top, best] = [w, i];
      }
      return best;
    });
  }

  /** A memoised verdict (null = feasible) per selector and exact need. */
  verdict(text: string, need: Resources, compute: () => string | null): string | null {
    const bySlots = child(this.memo.verdicts, text, () => new Map<number, Map<number, Map<number, string | null>>>());
    const byMem = child(
      child(bySlots, need.slots, () => new Map<number, Map<number, string | null>>()),
      need.cpuMillis,
      () => new Map<number, string | null>(),
    );
    return child(byMem, need.memoryMb, compute);
  }

  /** Running batch attempts on agent `i`, the preemption candidates. */
  batchOn(i: number): readonly RankedAttempt[] {
    return this.batch.get(i) ?? [];
  }

  /** Estimated size of the agent set one positive requirement selects, or Infinity for negative ones. */
  private sizeOf(r: Requirement): number {
    const byValue = this.index.labels.get(r.key);
    if (r.op === 'exists') return byValue ? [...byValue.values()].reduce((n, l) => n + l.length, 0) : 0;
    if (r.op !== '=' && r.op !== 'in') return Infinity;
    return r.values.reduce((n, v) => n + (byValue?.get(v)?.length ?? 0), 0);
  }

  /** The agents one positive requirement selects, ascending. */
  private setOf(r: Requirement): Int32Array {
    const byValue = this.index.labels.get(r.key);
    if (!byValue) return EMPTY;
    const parts = r.op === 'exists' ? [...byValue.values()] : r.values.map((v) => byValue.get(v) ?? EMPTY);
    if (parts.length === 1) return parts[0] ?? EMPTY;
    const out = new Int32Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    out.sort();
    // `in (a,a)` lists a value twice; keep each agent once.
    return out.filter((v, k) => k === 0 || v !== out[k - 1]);
  }

  /** Starts from the smallest positive requirement's set and filters it by the whole selector. */
  private select(selector: Selector): Int32Array {
    let base = this.index.all;
    let smallest = Infinity;
    for (const r of selector) {
      const size = this.sizeOf(r);
      if (size < smallest) [smallest, base] = [size, this.setOf(r)];
    }
    if (selector.length === 0) return base;
    return base.filter((i) => matches(selector, (this.agents[i] as AgentView).labels));
  }
}

/**
 * Builds an immutable, indexed snapshot; the scheduler swaps it whole. Given
 * the `previous` snapshot, the indices of agents whose identity (name, labels
 * and capacity, compared by reference) is unchanged are reused from it.
 */
export function snapshotOf(
  agents: readonly AgentView[],
  running: readonly RunningAttemptView[] = [],
  previous?: ClusterSnapshot,
): ClusterSnapshot {
  return new ClusterSnapshot(agents, running, previous);
}
