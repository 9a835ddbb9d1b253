/**
 * Housekeeping: what a long-running mesh accumulates stays bounded.
 * - The leader deletes jobs that ended more than the retention ago (record and
 *   idempotency key), each fenced on its mod revision and the leader's term,
 *   a bounded batch per pass; and, past a cap on how many ended jobs are kept,
 *   the oldest submitted of them (age alone would let a busy mesh fill etcd's
 *   space quota within the retention: 100 jobs/s for 7 days is 60M records).
 * - Every peer deletes the logs and artifacts it holds for jobs whose records
 *   are gone, and artifact uploads left behind by attempts that ended
 *   without committing them (an agent that never came back).
 * - The leader deletes the slot lists of concurrency groups no job holds a
 *   slot in (group names such as deploy-$BRANCH come and go), a page a pass.
 * - The leader compacts the store's history every interval, to the revision
 *   seen one interval earlier (what kube-apiserver does for its etcd): etcd
 *   keeps every version of every key until compacted, and each job record is
 *   written three times or more, so an uncompacted etcd fills its space quota
 *   and turns read-only. A watcher further behind than one interval re-reads
 *   and re-watches, as after any compaction.
 */
import type { Logger } from 'pino';
import { jobIdTime } from './jobs/ids.js';
import type { GroupSlots } from './jobs/group-slots.js';
import type { JobRepo } from './jobs/repo.js';
import type { LogStore } from './logs/log-store.js';
import type { ArtifactStorage } from './artifacts/storage.js';
import { isActive } from './jobs/state.js';
import { isNotLeader } from './jobs/errors.js';
import type { Compare, Store } from './store/store.js';

export interface HousekeepingOptions {
  repo: JobRepo;
  store: Store;
  logs: LogStore;
  /** This peer's artifacts; none: nothing to sweep. */
  artifacts?: ArtifactStorage;
  /** Concurrency groups' slot lists: the leader deletes those of idle groups. */
  groups?: Pick<GroupSlots, 'dropIdle'>;
  /** Ended jobs are deleted this long after they ended; 0 keeps them forever. */
  jobRetentionMs: number;
  /** At most this many ended jobs are kept (the oldest submitted go first); 0: no cap. */
  maxEndedJobs: number;
  /** How many jobs have not ended (this peer's tracker; the leader's is current). */
  liveJobs(): number;
  /** How often the leader compacts history; 0 never (etcd's own --auto-compaction does it). */
  compactionIntervalMs: number;
  isLeader(): boolean;
  /** Compares a leader's deletes carry; throws when this peer is not the leader. */
  fence(): Compare[];
  logger: Logger;
}

/** Jobs read and deleted per batch; a pass runs batches while they come back full, up to `BATCHES_PER_PASS`. */
const JOBS_PER_BATCH = 2000;
/** 20,000 deletions a pass at most: a larger backlog drains over several passes, not in one burst. */
const BATCHES_PER_PASS = 10;
/** Deletes in flight at once (the store's group commit merges them). */
const DELETES_IN_FLIGHT = 64;
/** Retention passes run at least twice per retention period, and at most 10 s apart (20,000 deletions each, 2,000/s). */
const MAX_PASS_INTERVAL_MS = 10_000;
/**
 * A log of a job submitted before the oldest job record is gone with its job,
 * once it is this old too: a peer with a clock behind ours could still be
 * creating a job whose id sorts before the oldest.
 */
const ORPHAN_LOG_MIN_AGE_MS = 5 * 60_000;
/** An artifact upload untouched this long, of an attempt that is not running any more, is dropped. */
const ABANDONED_UPLOAD_MS = 10 * 60_000;

/** A peer's blobs kept per job: its logs, its artifacts. */
interface JobBlobs {
  jobs(): Promise<string[]>;
  /** False when nothing was deleted (absent, or in use). */
  remove(jobId: string): Promise<boolean>;
}

/** What housekeeping has done since this peer started (for /metrics). */
export interface HousekeepingStats {
  jobsDeleted: number;
  logsDeleted: number;
  /** The revision history was last compacted to by this peer; 0 before the first. */
  compactedRevision: number;
}

export class Housekeeper {
  readonly stats: HousekeepingStats = { jobsDeleted: 0, logsDeleted: 0, compactedRevision: 0 };
  private readonly timers: NodeJS.Timeout[] = [];
  /** The revision seen at the previous compaction tick: the next compaction's target. */
  private seenRevision: number | undefined;
  private readonly log: Logger;

  constructor(private readonly o: HousekeepingOptions) {
    this.log = o.logger.child({ component: 'housekeeping' });
  }

  start(): void {
    const retention = this.o.jobRetentionMs;
    if (retention > 0 || this.o.maxEndedJobs > 0) {
      this.every(retention > 0 ? Math.min(MAX_PASS_INTERVAL_MS, Math.max(250, retention / 2)) : MAX_PASS_INTERVAL_MS, () =>
        this.sweep(Date.now()),
      );
    }
    if (this.o.compactionIntervalMs > 0) this.every(this.o.compactionIntervalMs, () => this.compact());
  }

  close(): void {
    for (const t of this.timers.splice(0)) clearInterval(t);
  }

  /**
   * One retention pass at `now`: ended jobs past the retention, then the
   * oldest ended ones over the cap (leader only), then logs of jobs that are gone.
   */
  async sweep(now: number): Promise<{ jobs: number; overCap: number; logs: number }> {
    const retention = this.o.jobRetentionMs;
    const cutoff = retention > 0 ? now - retention : -Infinity;
    let jobs = 0;
    for (let i = 0; i < BATCHES_PER_PASS && retention > 0 && this.o.isLeader(); i++) {
      const deleted = await this.deleteJobs(cutoff, JOBS_PER_BATCH);
      jobs += deleted;
      if (deleted < JOBS_PER_BATCH) break;
    }
    let overCap = 0;
    for (let i = 0; i < BATCHES_PER_PASS && this.o.maxEndedJobs > 0 && this.o.isLeader(); i++) {
      const excess = (await this.o.repo.count()) - this.o.liveJobs() - this.o.maxEndedJobs;
      if (excess <= 0) break;
      const want = Math.min(excess, JOBS_PER_BATCH);
      const deleted = await this.deleteJobs(now, want);
      overCap += deleted;
      if (deleted < want) break;
    }
    const [logBlobs, artifactBlobs] = this.blobs();
    const logs = await this.deleteOrphans(logBlobs!, cutoff, now);
    const artifacts = artifactBlobs ? await this.deleteOrphans(artifactBlobs, cutoff, now) : 0;
    const uploads = await this.dropAbandonedUploads(now);
    if (artifacts + uploads > 0)
      this.log.info({ artifacts, uploads }, 'deleted the artifacts of jobs that are gone, and uploads their attempts left unfinished');
    this.stats.jobsDeleted += jobs + overCap;
    this.stats.logsDeleted += logs;
    if (jobs + overCap + logs > 0) {
      this.log.info(
        { jobs, over_cap: overCap, logs, retention_ms: retention, max_ended_jobs: this.o.maxEndedJobs },
        'deleted ended jobs (past the retention, or oldest over the cap) and their logs',
      );
    }
    const groups = await this.dropIdleGroups();
    if (groups > 0) this.log.info({ groups }, 'deleted the slot lists of concurrency groups no job holds');
    return { jobs, overCap, logs };
  }

  private async deleteJobs(cutoff: number, limit: number): Promise<number> {
    const due = await this.o.repo.endedBefore(cutoff, limit);
    let deleted = 0;
    for (let i = 0; i < due.length; i += DELETES_IN_FLIGHT) {
      let fence: Compare[];
      try {
        fence = this.o.fence();
      } catch (err) {
        if (isNotLeader(err)) return deleted; // leadership moved mid-pass: the new leader carries on
        throw err;
      }
      const done = await Promise.all(due.slice(i, i + DELETES_IN_FLIGHT).map((v) => this.o.repo.remove(v, fence)));
      deleted += done.filter(Boolean).length;
    }
    return deleted;
  }

  private async dropIdleGroups(): Promise<number> {
    if (!this.o.groups || !this.o.isLeader()) return 0;
    try {
      return await this.o.groups.dropIdle(this.o.fence());
    } catch (err) {
      if (isNotLeader(err)) return 0;
      throw err;
    }
  }

  /** Logs and artifacts: what this peer keeps per job. */
  private blobs(): JobBlobs[] {
    const artifacts = this.o.artifacts;
    const kept: JobBlobs[] = [this.o.logs];
    if (artifacts)
      kept.push({
        jobs: () => artifacts.jobs(),
        remove: async (id) => {
          await artifacts.remove(id);
          return true;
        },
      });
    return kept;
  }

  /** Uploads of attempts that ended (or whose job is gone) without a commit, untouched for a while: nothing of them is kept. */
  private async dropAbandonedUploads(now: number): Promise<number> {
    let dropped = 0;
    for (const u of (await this.o.artifacts?.uploads()) ?? []) {
      if (u.changedAt > now - ABANDONED_UPLOAD_MS) continue;
      const r = (await this.o.repo.get(u.jobId))?.record;
      if (r && r.job.attempt === u.attempt && isActive(r.job.state)) continue;
      await this.o.artifacts?.abort(u);
      dropped++;
    }
    return dropped;
  }

  /**
   * Blobs here (logs, artifacts) of jobs whose records no longer exist:
   * without a look at the record for jobs submitted before the oldest record
   * (that is where jobs deleted over the cap are), one by one for jobs
   * submitted before the cutoff.
   */
  private async deleteOrphans(blobs: JobBlobs, cutoff: number, now: number): Promise<number> {
    const oldest = await this.o.repo.oldestId();
    const goneBelow = Math.min(oldest === undefined ? Infinity : (jobIdTime(oldest) ?? 0), now - ORPHAN_LOG_MIN_AGE_MS);
    let deleted = 0;
    let checked = 0;
    for (const id of await blobs.jobs()) {
      const submitted = jobIdTime(id);
      if (submitted === undefined) continue;
      // Below `goneBelow` a job sorts before the oldest record (same ms or later is not below it).
      if (submitted >= goneBelow) {
        // ids sort by submission: the rest are newer
        if (submitted > cutoff || checked++ >= JOBS_PER_BATCH * BATCHES_PER_PASS) break;
        if (await this.o.repo.get(id)) continue;
      }
      if (await blobs.remove(id)) deleted++;
    }
    return deleted;
  }

  /**
   * A job's record was deleted (seen on this peer's watch, whoever deleted
   * it): its logs here go at once. One still open (being read) is left to a
   * later sweep.
   */
  async forget(jobId: string): Promise<void> {
    for (const blobs of this.blobs()) {
      try {
        if ((await blobs.remove(jobId)) && blobs === this.o.logs) this.stats.logsDeleted++;
      } catch (err) {
        this.log.warn({ err, job_id: jobId }, 'could not delete the logs or artifacts of a deleted job');
      }
    }
  }

  /** One compaction tick: compacts to the revision of the previous tick (leader only; every peer keeps count). */
  async compact(): Promise<number | undefined> {
    const target = this.seenRevision;
    this.seenRevision = await this.o.store.revision();
    if (target === undefined || !this.o.isLeader()) return undefined;
    await this.o.store.compact(target); // a no-op if someone compacted further already
    this.stats.compactedRevision = target;
    this.log.debug({ revision: target }, 'store history compacted');
    return target;
  }

  private every(ms: number, task: () => Promise<unknown>): void {
    let busy = false;
    const t = setInterval(() => {
      if (busy) return;
      busy = true;
      task()
        .catch((err: unknown) => this.log.warn({ err }, 'housekeeping pass failed'))
        .finally(() => (busy = false));
    }, ms);
    t.unref();
    this.timers.push(t);
  }
}
