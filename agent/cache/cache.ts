/**
 * The agent's job cache (`--cache KEY:PATH`, docs/architecture.md "Caches"):
 * one directory per (tenant, key) under `<work-dir>/cache/<sha256>`, its
 * content in `data` (a copy of the job's PATH, file or directory). Restored
 * into the workspace before a run; saved back after a run that exited 0, by
 * a copy into a temp directory and a rename, so a crash never leaves half an
 * entry. Least recently used entries are evicted after a save until the
 * cache is within its cap; an entry held by a running attempt is never
 * evicted. Hits and misses count restores since the agent started.
 */
import { createHash, randomUUID } from 'node:crypto';
import { cp, lstat, mkdir, readdir, realpath, rename, rm, utimes } from 'node:fs/promises';
import { join, sep } from 'node:path';
import type { Logger } from 'pino';
import { absentIfMissing } from '../../proto/absent.js';

export interface CacheRef {
  readonly key: string;
  readonly path: string;
}

/** What to copy into the workspace: the entry's data to `path`. */
export interface CacheRestore {
  readonly path: string;
  readonly from: string;
}

export interface CacheStats {
  readonly bytes: number;
  readonly entries: number;
  readonly hits: number;
  readonly misses: number;
}

interface Entry {
  bytes: number;
  /** Attempts holding it: never evicted while above 0. */
  pins: number;
}

/** Entry directories are named by this: tenants never share one, whatever their keys. */
export const entryId = (tenant: string, key: string): string => createHash('sha256').update(`${tenant}\0${key}`).digest('hex');

const ENTRY = /^[0-9a-f]{64}$/;

export class JobCache {
  /** In least recently used order (a Map keeps insertion order: a use re-inserts). */
  private readonly entries = new Map<string, Entry>();
  private hits = 0;
  private misses = 0;
  /** Saves run one at a time: each may replace an entry and evict others. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly dir: string,
    private readonly maxBytes: number,
    private readonly log: Logger,
  ) {}

  /** Reads what an earlier agent process left: entries by their last use, temp and replaced ones removed. */
  async load(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const found: { id: string; bytes: number; used: number }[] = [];
    for (const name of await readdir(this.dir)) {
      const path = join(this.dir, name);
      if (!ENTRY.test(name)) {
        await rm(path, { recursive: true, force: true }); // a save or replacement cut short
        continue;
      }
      const st = await lstat(path);
      found.push({ id: name, bytes: await treeBytes(join(path, 'data')), used: st.mtimeMs });
    }
    for (const e of found.sort((a, b) => a.used - b.used)) this.entries.set(e.id, { bytes: e.bytes, pins: 0 });
    if (found.length > 0) this.log.info({ entries: found.length, bytes: this.stats().bytes }, 'job cache loaded');
  }

  stats(): CacheStats {
    let bytes = 0;
    for (const e of this.entries.values()) bytes += e.bytes;
    return { bytes, entries: this.entries.size, hits: this.hits, misses: this.misses };
  }

  /**
   * The entries to restore for an attempt, each pinned until `release` is
   * called with the same refs: a miss is counted and left out.
   */
  checkout(tenant: string, refs: readonly CacheRef[]): CacheRestore[] {
    const out: CacheRestore[] = [];
    for (const r of refs) {
      const id = entryId(tenant, r.key);
      const e = this.entries.get(id);
      if (!e) {
        this.misses++;
        continue;
      }
      this.hits++;
      e.pins++;
      this.touch(id, e);
      out.push({ path: r.path, from: join(this.dir, id, 'data') });
    }
    return out;
  }

  /** Unpins what `checkout` pinned for these refs. */
  release(tenant: string, refs: readonly CacheRef[]): void {
    for (const r of refs) {
      const e = this.entries.get(entryId(tenant, r.key));
      if (e && e.pins > 0) e.pins--;
    }
  }

  /** Saves each ref's path of `workspace` (one a job left out or made a link is skipped), then evicts. */
  save(tenant: string, refs: readonly CacheRef[], workspace: string): Promise<void> {
    const run = this.chain.then(async () => {
      for (const r of refs) await this.saveOne(tenant, r, workspace);
      await this.evict();
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async saveOne(tenant: string, r: CacheRef, workspace: string): Promise<void> {
    const src = join(workspace, r.path);
    const log = this.log.child({ cache_key: r.key, path: r.path });
    // The job owns its workspace: a path it made a link (or under one) could point anywhere on the host.
    const real = await realpath(src).catch(absentIfMissing);
    if (real === undefined) return log.info('nothing to save: the path does not exist');
    const root = await realpath(workspace);
    if (!real.startsWith(root + sep) || (await lstat(src)).isSymbolicLink())
      return log.warn('not saved: the path leads out of the workspace through a symbolic link');
    const id = entryId(tenant, r.key);
    const tmp = join(this.dir, `.tmp-${randomUUID()}`);
    try {
      await mkdir(tmp, { mode: 0o700 });
      // Links inside are copied as links, never followed.
      await cp(src, join(tmp, 'data'), { recursive: true, verbatimSymlinks: true, force: true, errorOnExist: false });
      const bytes = await treeBytes(join(tmp, 'data'));
      if (bytes > this.maxBytes) return log.warn({ bytes, max_bytes: this.maxBytes }, 'not saved: larger than the whole cache');
      const final = join(this.dir, id);
      const old = join(this.dir, `.old-${randomUUID()}`);
      // rename(2) does not replace a directory that has content: move the old one aside first.
      await rename(final, old).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
      await rename(tmp, final);
      await rm(old, { recursive: true, force: true });
      const pins = this.entries.get(id)?.pins ?? 0;
      this.entries.delete(id);
      this.entries.set(id, { bytes, pins });
      log.info({ bytes }, 'cache saved');
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  /** Least recently used first, skipping pinned entries, until within the cap. */
  private async evict(): Promise<void> {
    let total = this.stats().bytes;
    for (const [id, e] of [...this.entries]) {
      if (total <= this.maxBytes) return;
      if (e.pins > 0) continue;
      this.entries.delete(id);
      total -= e.bytes;
      await rm(join(this.dir, id), { recursive: true, force: true });
      this.log.info({ entry: id, bytes: e.bytes }, 'cache entry evicted');
    }
  }

  private touch(id: string, e: Entry): void {
    this.entries.delete(id);
    this.entries.set(id, e);
    const now = new Date();
    void utimes(join(this.dir, id), now, now).catch(() => undefined); // its place in the order after a restart
  }
}

/** Bytes of the files under `path` (links count their own size); 0 when absent. */
async function treeBytes(path: string): Promise<number> {
  const st = await lstat(path).catch(absentIfMissing);
  if (!st) return 0;
  if (!st.isDirectory()) return st.size;
  let n = 0;
  for (const name of await readdir(path)) n += await treeBytes(join(path, name));
  return n;
}

const UNITS: Record<string, number> = {
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KIB: 1024,
  MIB: 1024 ** 2,
  GIB: 1024 ** 3,
  TIB: 1024 ** 4,
};

/** `10GB`, `500MB`, `2GiB`, `1024` (bytes): a size for --cache-max; throws on anything else. */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?$/i.exec(text.trim());
  const unit = UNITS[(m?.[2] ?? 'B').toUpperCase()];
  if (!m || unit === undefined) throw new Error(`"${text}" is not a size (e.g. 10GB, 500MB, 2GiB)`);
  return Math.floor(Number(m[1]) * unit);
}

/** The default cap: 5 GB. */
export const DEFAULT_CACHE_MAX = 5e9;
