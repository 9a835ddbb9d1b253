/**
 * The leader's schedule loop. Every peer follows the schedules (one watched
 * prefix); only the elected leader fires them. A pass takes each unpaused
 * schedule's due steps (plan.ts) and stores them one by one through
 * ScheduleFiring, each fenced on the record's revision and the leader's term,
 * so a tick is started once whoever leads when. The loop sleeps until the
 * earliest next tick (at most a second), and wakes at once on a change of
 * schedules or of leader.
 */
import type { Logger } from 'pino';
import type { Schedule } from '../../proto/gen/runmesh/v1/schedule.js';
import { WatchedPrefix } from '../mesh/watched-prefix.js';
import type { Compare, Store } from '../store/store.js';
import type { TenantRecords, VersionedRecord } from '../store/tenant-records.js';
import type { ScheduleFiring } from './firing.js';
import { dueSteps } from './plan.js';
import { cronOf, missedAfterMs, missedPolicyOf } from './record.js';

export interface TickerDeps {
  store: Store;
  schedules: TenantRecords<Schedule>;
  firing: ScheduleFiring;
  isLeader(): boolean;
  /** The leader's compares; throws when this peer does not lead. */
  fence(): Compare[];
  logger: Logger;
}

/** Steps stored per schedule per pass at most; the rest wait for the next pass (a moment later). */
const STEPS_PER_PASS = 50;
const MAX_SLEEP_MS = 1000;
const MIN_SLEEP_MS = 10;

export class ScheduleTicker {
  private watched: WatchedPrefix<VersionedRecord<Schedule>> | undefined;
  /** Records this peer stored, newer than the watch may have shown yet. */
  private readonly latest = new Map<string, VersionedRecord<Schedule>>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private closed = false;

  constructor(private readonly d: TickerDeps) {}

  async start(): Promise<void> {
    this.watched = await WatchedPrefix.open({
      store: this.d.store,
      prefix: this.d.schedules.prefix,
      parse: (kv) => {
        try {
          return { value: this.d.schedules.decode(kv.key, kv.value), modRevision: kv.modRevision };
        } catch (err) {
          this.d.logger.error({ err, key: kv.key }, 'schedule record cannot be read: it does not fire');
          return undefined;
        }
      },
      logger: this.d.logger,
    });
    this.watched.onChange(() => this.wake());
    this.wake();
  }

  /** Asks for a pass now (a schedule or the leader changed). */
  wake(): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.running = this.pass()
      .catch((err: unknown) => this.d.logger.warn({ err }, 'schedule pass failed; the next one retries'))
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.wake();
        } else this.sleep();
      });
  }

  private sleep(): void {
    if (this.closed) return;
    const now = Date.now();
    let next = now + MAX_SLEEP_MS;
    if (this.d.isLeader())
      for (const v of this.current()) {
        const s = v.value;
        if (s.paused || !s.spec) continue;
        const t = cronOf(s.spec)
          .next(new Date(s.lastTick ?? s.createdAt ?? now))
          ?.getTime();
        if (t !== undefined) next = Math.min(next, t);
      }
    this.timer = setTimeout(() => this.wake(), Math.max(MIN_SLEEP_MS, next - now));
    this.timer.unref();
  }

  /** The schedules as known here: the watch's, or what this peer stored since, whichever is newer. */
  private current(): Array<VersionedRecord<Schedule>> {
    const out: Array<VersionedRecord<Schedule>> = [];
    const seen = new Set<string>();
    for (const e of this.watched?.entriesInOrder() ?? []) {
      seen.add(e.kv.key);
      const mine = this.latest.get(e.kv.key);
      out.push(mine && mine.modRevision > e.value.modRevision ? mine : e.value);
    }
    for (const key of this.latest.keys()) if (!seen.has(key)) this.latest.delete(key); // deleted
    return out;
  }

  private async pass(): Promise<void> {
    if (!this.d.isLeader()) return;
    for (const v of this.current()) {
      if (this.closed || !this.d.isLeader()) return;
      if (v.value.paused || !v.value.spec) continue;
      await this.fireDue(v).catch((err: unknown) =>
        this.d.logger.warn(
          { err, schedule: v.value.spec?.name, tenant: v.value.spec?.tenant },
          'schedule not fired; retrying at the next pass',
        ),
      );
    }
  }

  /** Stores the schedule's due steps in order; stops at the first that loses its race (re-read at the next pass). */
  private async fireDue(v: VersionedRecord<Schedule>): Promise<void> {
    const spec = v.value.spec!;
    const key = this.d.schedules.key(spec.tenant, spec.name);
    const now = new Date();
    const last = new Date(v.value.lastTick ?? v.value.createdAt ?? now.toISOString());
    const steps = dueSteps(cronOf(spec), last, now, missedPolicyOf(spec), missedAfterMs(spec), STEPS_PER_PASS);
    let current = v;
    for (const step of steps) {
      let fence: Compare[];
      try {
        fence = this.d.fence();
      } catch {
        return; // no longer the leader: the next one fires it
      }
      const done = await this.d.firing.run({ current, ...step, advance: true, fence, recordFailure: true });
      if (!done) {
        // Changed since read (paused, triggered, deleted, or fired by another leader): read it again.
        const fresh = await this.d.schedules.get(spec.tenant, spec.name);
        if (fresh) this.latest.set(key, fresh);
        else this.latest.delete(key);
        // Only a real change is worth a pass at once; a failed fence (leadership just lost) waits for the election to say so.
        if (fresh?.modRevision !== current.modRevision) this.again = true;
        return;
      }
      current = done.stored;
      this.latest.set(key, current);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.running;
    await this.watched?.close();
  }
}
