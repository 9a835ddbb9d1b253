/**
 * What the leader does, each round, about jobs that meet a full concurrency
 * group (docs/architecture.md, "Concurrency groups"):
 * - queue: the job waits, its reason naming the group and who holds it
 *   (and the reason goes once the group has room for it);
 * - skip: the job ends unrun (CANCELLED, failure CONCURRENCY_SKIPPED);
 * - cancel-newest: the arriving job is cancelled (CANCELLED, failure CANCELLED);
 * - cancel-in-progress: the group's older jobs, running or queued, are
 *   cancelled so that the newest `concurrency` remain; the new job takes a
 *   slot once they have ended, through the same store-kept limit as any job.
 * `groupActions` decides (pure); `GroupConflicts.apply` writes and tells agents.
 */
import type { Logger } from 'pino';
import { ConcurrencyConflict } from '../../proto/gen/runmesh/v1/job.js';
import { groupLabel, type GroupRef } from '../jobs/group-slots.js';
import { endForFullGroup, groupHasRoom, supersede, waitForGroup } from '../jobs/group-verbs.js';
import type { JobRecord } from '../jobs/record.js';
import type { Mutator } from '../jobs/repo.js';
import type { GroupView, Member } from './group-queues.js';

const C = ConcurrencyConflict;

export type GroupAction =
  | { kind: 'wait' | 'skip' | 'cancel'; id: string; group: GroupRef; reason: string }
  | { kind: 'room'; id: string; group: GroupRef }
  | { kind: 'supersede'; id: string; by: string; group: GroupRef; reason: string };

/** Job ids named in a reason, at most. */
const NAMED = 3;

/**
 * Why a held job waits: the group and the jobs holding it. Not its place in
 * line: that changes each time the line moves and would rewrite every waiting
 * job's record (Scheduler.explain gives the place).
 */
function fullReason(v: GroupView): string {
  const names = v.active.slice(0, NAMED).map((m) => `job ${m.id}`);
  if (v.active.length > NAMED) names.push(`${v.active.length - NAMED} more`);
  const running = `${v.active.length}/${v.ref.limit} running${names.length > 0 ? `: ${names.join(', ')}` : ''}`;
  return `${groupLabel(v.ref)} is full: ${running}`;
}

/** The actions for each group as it stands now. */
export function groupActions(groups: Iterable<GroupView>): GroupAction[] {
  const out: GroupAction[] = [];
  for (const v of groups) {
    const queued = [...v.released, ...v.held];
    const superseded = new Set<string>();
    const newest = queued.filter((m) => m.group.onConflict === C.CONCURRENCY_CONFLICT_CANCEL_IN_PROGRESS).at(-1);
    if (newest) {
      const older = [...v.active, ...queued].filter((m) => m.order < newest.order).sort((a, b) => b.order - a.order);
      for (const m of older.slice(newest.group.limit - 1)) {
        superseded.add(m.id);
        const reason = `superseded by job ${newest.id} (cancel-in-progress in ${groupLabel(v.ref)})`;
        out.push({ kind: 'supersede', id: m.id, by: newest.id, group: v.ref, reason });
      }
    }
    for (const m of v.released) if (!superseded.has(m.id)) out.push({ kind: 'room', id: m.id, group: m.group });
    const full = fullReason(v);
    for (const m of v.held) if (!superseded.has(m.id)) out.push(heldAction(m, full));
  }
  return out;
}

function heldAction(m: Member, full: string): GroupAction {
  switch (m.group.onConflict) {
    case C.CONCURRENCY_CONFLICT_SKIP:
      return { kind: 'skip', id: m.id, group: m.group, reason: full };
    case C.CONCURRENCY_CONFLICT_CANCEL_NEWEST:
      return { kind: 'cancel', id: m.id, group: m.group, reason: `cancel-newest: ${full}` };
    default:
      return { kind: 'wait', id: m.id, group: m.group, reason: full };
  }
}

export interface GroupConflictDeps {
  write(id: string, mutate: Mutator): Promise<JobRecord | undefined>;
  /** The job as this peer last saw it. */
  current(id: string): JobRecord | undefined;
  /** Tells the agent of an active attempt to cancel it. */
  cancelOnAgent(agent: string, jobId: string, attempt: number, graceSeconds: number, reason: string): Promise<boolean>;
  /** The scheduler's in-memory reasons (shown by Get on this peer before they are stored). */
  reasons: Map<string, string>;
  logger: Logger;
  /** Waiting reasons stored per round, at most (a slot freeing changes every held job's reason). */
  reasonWrites: number;
}

export class GroupConflicts {
  constructor(private readonly d: GroupConflictDeps) {}

  async apply(actions: readonly GroupAction[]): Promise<void> {
    let budget = this.d.reasonWrites;
    const writes: Array<Promise<unknown>> = [];
    for (const a of actions) {
      if (a.kind === 'wait') {
        this.d.reasons.set(a.id, a.reason);
        const known = this.d.current(a.id)?.job;
        if ((known?.waitingReason === a.reason && known.waitingOnGroup === a.group.name) || budget-- <= 0) continue;
        writes.push(this.d.write(a.id, (r) => waitForGroup(r, a.group.name, a.reason)));
      } else if (a.kind === 'room') {
        // Said only to jobs that were told they wait on the group (a write only then).
        if (this.d.current(a.id)?.job.waitingOnGroup) writes.push(this.d.write(a.id, groupHasRoom));
      } else if (a.kind === 'supersede') writes.push(this.supersede(a.id, a.by, a.reason));
      else writes.push(this.end(a.id, a.kind, a.reason));
    }
    await Promise.all(writes);
  }

  private async end(id: string, kind: 'skip' | 'cancel', reason: string): Promise<void> {
    const v = await this.d.write(id, (r) => endForFullGroup(r, kind, reason, new Date()));
    if (v) this.d.logger.info({ job_id: id, reason }, kind === 'skip' ? 'job skipped: group full' : 'job cancelled: group full');
  }

  private async supersede(id: string, by: string, reason: string): Promise<void> {
    let outcome = 'noop' as ReturnType<typeof supersede>;
    const v = await this.d.write(id, (r) => (outcome = supersede(r, by, reason, new Date())) !== 'noop');
    if (!v) return;
    this.d.logger.info({ job_id: id, by_job: by, outcome }, 'job superseded in its concurrency group');
    const agent = v.job.attempts.at(-1)?.agent;
    if (outcome === 'agent' && agent)
      await this.d.cancelOnAgent(agent, id, v.job.attempt, v.job.spec.cancelGraceSeconds, reason).catch(() => false);
  }
}
