/**
 * Concurrency groups in memory: which jobs of each group hold a slot (ASSIGNED
 * or RUNNING), which queued ones the router may see, and which are held back
 * because the group is full. Held jobs never reach the router, so a long line
 * of them does not hide other work; they are released first come, first
 * served as slots free. This is the fast path only: the limit itself is kept
 * by the store (jobs/group-slots.ts), so a stale view here costs a refused
 * write, never an extra job.
 */
import type { QueuedJob } from '../../routing/index.js';
import type { GroupRef } from '../jobs/group-slots.js';

/** A member of a group: a job holding a slot, or a queued one. */
export interface Member {
  id: string;
  order: number;
  group: GroupRef;
}

interface Group {
  ref: GroupRef;
  /** Jobs holding a slot, by id. */
  active: Map<string, Member>;
  /** Queued jobs shown to the router (a slot is theirs once placed). */
  released: Map<string, Member>;
  /** Queued jobs waiting for a slot, in submission order. */
  held: Array<Member & { job: QueuedJob }>;
}

/** A group as GroupQueues.entries shows it. */
export interface GroupView {
  ref: GroupRef;
  /** Jobs holding a slot, oldest first. */
  active: Member[];
  /** Queued jobs the router may place, oldest first. */
  released: Member[];
  /** Queued jobs waiting for a slot, oldest first. */
  held: Member[];
}

export class GroupQueues {
  private readonly groups = new Map<string, Group>();
  /** Group key of each member. */
  private readonly memberOf = new Map<string, string>();

  /** `m` holds a slot of its group. */
  activate(m: Member): void {
    this.join(m).active.set(m.id, m);
  }

  /** `m` is queued, shown as `job` to the router once released. */
  enqueue(m: Member, job: QueuedJob): void {
    const g = this.join(m);
    const at = g.held.findIndex((h) => h.order > m.order);
    g.held.splice(at < 0 ? g.held.length : at, 0, { ...m, job });
  }

  /** Takes `id` out of its group (its slot or its place in line); returns the group's key. */
  remove(id: string): string | undefined {
    const key = this.memberOf.get(id);
    const g = key === undefined ? undefined : this.groups.get(key);
    if (!g) return undefined;
    this.memberOf.delete(id);
    g.active.delete(id);
    g.released.delete(id);
    const i = g.held.findIndex((h) => h.id === id);
    if (i >= 0) g.held.splice(i, 1);
    return key;
  }

  /**
   * Moves the group's held jobs to the router while their own limit leaves
   * room, in order, stopping at the first that must wait; returns them.
   */
  release(key: string): QueuedJob[] {
    const g = this.groups.get(key);
    if (!g) return [];
    const out: QueuedJob[] = [];
    for (let h = g.held[0]; h && g.active.size + g.released.size < h.group.limit; h = g.held[0]) {
      g.held.shift();
      g.released.set(h.id, h);
      out.push(h.job);
    }
    if (g.active.size + g.released.size + g.held.length === 0) this.groups.delete(key);
    return out;
  }

  /** Each group as it stands: slots held and the queue, oldest first. */
  *entries(): Generator<GroupView> {
    const byOrder = (a: Member, b: Member): number => a.order - b.order;
    for (const g of this.groups.values())
      yield {
        ref: g.ref,
        active: [...g.active.values()].sort(byOrder),
        released: [...g.released.values()].sort(byOrder),
        held: g.held.map(({ id, order, group }) => ({ id, order, group })),
      };
  }

  /** Groups with a member. */
  get size(): number {
    return this.groups.size;
  }

  private join(m: Member): Group {
    this.memberOf.set(m.id, m.group.key);
    let g = this.groups.get(m.group.key);
    if (!g) this.groups.set(m.group.key, (g = { ref: m.group, active: new Map(), released: new Map(), held: [] }));
    return g;
  }
}
