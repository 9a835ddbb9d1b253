/**
 * Concurrency groups in the store: the durable half of the limit. Each group
 * (per tenant) has one key listing the jobs that took a slot. Every move of a
 * grouped job into ASSIGNED carries a guard (`GroupSlots.guard`) that re-counts
 * the listed jobs still ASSIGNED or RUNNING, refuses the write when they fill
 * the group, and otherwise adds the job to the list in the same transaction,
 * compared on the list's mod revision. Two writers (an old leader and a new
 * one) can therefore never both take the last slot: the second one's compare
 * fails and its re-count sees the first. docs/architecture.md, "Concurrency
 * groups", has the whole argument.
 */
import { ConcurrencyConflict, type JobSpec } from '../../proto/gen/runmesh/v1/job.js';
import type { Compare, Store } from '../store/store.js';
import { GroupFullError } from './errors.js';
import type { Guard, JobRepo } from './repo.js';
import { isActive } from './state.js';
import type { JobTracker } from './tracker.js';

/** A job's concurrency group as resolved at submit. */
export interface GroupRef {
  tenant: string;
  name: string;
  /** `${tenant}/${name}`: unique across tenants (a tenant name has no '/'). */
  key: string;
  limit: number;
  onConflict: ConcurrencyConflict;
}

/** The job's group, or undefined when it has none. */
export function groupOf(spec: JobSpec): GroupRef | undefined {
  if (!spec.concurrencyGroup) return undefined;
  return {
    tenant: spec.tenant,
    name: spec.concurrencyGroup,
    key: `${spec.tenant}/${spec.concurrencyGroup}`,
    limit: spec.concurrency ?? 1,
    onConflict: spec.onConflict || ConcurrencyConflict.CONCURRENCY_CONFLICT_QUEUE,
  };
}

/** "concurrency group deploy (tenant t)". */
export const groupLabel = (g: GroupRef): string => `concurrency group ${g.name} (tenant ${g.tenant})`;

interface SlotList {
  holders: string[];
}

export class GroupSlots {
  private readonly prefix: string;
  /** Where dropIdle goes on from: the last key it looked at, or undefined to start over. */
  private sweptTo: string | undefined;

  constructor(
    private readonly store: Store,
    private readonly repo: JobRepo,
    /** The live jobs as this peer knows them; a job it shows active is counted without a read. */
    private readonly tracker: JobTracker,
    prefix = '/runmesh/',
  ) {
    this.prefix = `${prefix}groups/`;
  }

  key(g: GroupRef): string {
    return this.prefix + g.key;
  }

  /**
   * The guard for assigning `record` (already moved to ASSIGNED by the
   * mutator): the slot list's compare and its new value with this job added.
   * A record with no group, or not moving into a slot, needs nothing.
   */
  readonly guard: Guard = async (record) => {
    const g = groupOf(record.job.spec);
    if (!g || !isActive(record.job.state)) return { compare: [], success: [] };
    const key = this.key(g);
    const { holders, compare } = await this.holders(g, record.job.id);
    if (holders.length >= g.limit) throw new GroupFullError(groupLabel(g), g.limit, holders);
    const value: SlotList = { holders: [...holders, record.job.id] };
    return { compare: [compare], success: [{ type: 'put', key, value: JSON.stringify(value) }] };
  };

  /**
   * The jobs of `g` holding a slot now (other than `except`), with the compare
   * that keeps that answer true until the write. A listed job counts while it
   * is ASSIGNED or RUNNING; one this peer saw end (or queue again) after the
   * list was last written cannot have taken a slot since without rewriting
   * the list, so it is dropped without a read. Any other is read from the store.
   */
  async holders(g: GroupRef, except = ''): Promise<{ holders: string[]; compare: Compare }> {
    const key = this.key(g);
    const kv = await this.store.get(key);
    const listed = kv ? (JSON.parse(kv.value) as SlotList).holders : [];
    const held = await Promise.all(listed.map(async (id) => id !== except && (await this.holds(id, kv?.modRevision ?? 0))));
    return {
      holders: listed.filter((_, i) => held[i]),
      compare: kv ? { key, target: 'modRevision', op: '==', value: kv.modRevision } : { key, target: 'version', op: '==', value: 0 },
    };
  }

  /**
   * Deletes the slot lists of groups no job holds a slot in, so a mesh whose
   * group names come and go (deploy-$BRANCH) does not keep one key per name
   * ever used. Looks at up to `limit` lists from where the previous call
   * stopped (the next call goes on from there). Each delete compares the
   * list's mod revision (and `fence`): an assignment that wrote the list
   * meanwhile keeps it, and one that comes later finds no list and starts
   * a new one, as for a group never used.
   */
  async dropIdle(fence: Compare[], limit = 500): Promise<number> {
    const page = await this.store.range(this.prefix, { after: this.sweptTo, limit });
    this.sweptTo = page.more ? page.kvs.at(-1)?.key : undefined;
    let dropped = 0;
    for (const kv of page.kvs) {
      const listed = listedIn(kv.value);
      if (!listed) continue; // unreadable: left as it is (assigning into that group fails loudly on it)
      const held = await Promise.all(listed.map((id) => this.holds(id, kv.modRevision)));
      if (held.some(Boolean)) continue;
      const res = await this.store.txn({
        compare: [...fence, { key: kv.key, target: 'modRevision', op: '==', value: kv.modRevision }],
        success: [{ type: 'delete', key: kv.key }],
      });
      if (res.succeeded) dropped++;
    }
    return dropped;
  }

  private async holds(id: string, listRevision: number): Promise<boolean> {
    const known = this.tracker.get(id);
    if (known && isActive(known.record.job.state)) return true;
    if (known && known.modRevision > listRevision) return false;
    const stored = await this.repo.get(id);
    return stored !== undefined && isActive(stored.record.job.state);
  }
}

/** A slot list's holders; undefined when the value is not a slot list. */
function listedIn(value: string): string[] | undefined {
  try {
    const holders = (JSON.parse(value) as Partial<SlotList>).holders;
    return Array.isArray(holders) ? holders : undefined;
  } catch {
    return undefined;
  }
}
