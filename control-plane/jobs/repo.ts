/**
 * Job persistence with domain verbs on top of the etcd-shaped store. Every
 * write is fenced on the job key's mod revision, so a stale peer or a zombie
 * agent cannot overwrite a newer state; callers re-read and retry in one place.
 */
import type { JobState } from '../../proto/gen/runmesh/v1/job.js';
import type { Compare, Op, RangeOptions, RangeResult, Store, WatchHandlers, Watch } from '../store/store.js';
import { JobNotFoundError, StaleWriteError, UnreadableRecordError } from './errors.js';
import { idBoundAt, jobIdTime, newJobId } from './ids.js';
import { selectorRequires, type LabelFilter } from './list-filter.js';
import { cloneRecord, decodeRecord, encodeRecord, queuedRecord, type JobRecord, type ResolvedSpec } from './record.js';
import { isTerminal } from './state.js';

export interface Versioned {
  record: JobRecord;
  modRevision: number;
}

/** What storing a new job came to: the stored job, or with `existing`, the first job stored under its idempotency key. */
export interface Created extends Versioned {
  existing: boolean;
}

export interface ListFilter {
  states: readonly JobState[];
  namePrefix: string;
  /** Only jobs of the tenants this accepts (the caller's). */
  tenant: (tenant: string) => boolean;
  /** Only jobs whose selector requires these labels (empty: any job). */
  labels: LabelFilter;
  /** Submitted at or after / before these times (ms since the epoch; undefined: no bound). */
  createdAfter?: number;
  createdBefore?: number;
  oldestFirst: boolean;
}

/** Mutator for `update`: edit the record in place; return false to write nothing. */
export type Mutator = (record: JobRecord) => boolean | void;

/** Extra compares and ops one job write must carry; built from the record as it is about to be written. */
export interface GuardOps {
  compare: Compare[];
  success: Op[];
}

/** Adds to a job write what it must also compare and write (a concurrency group's slot, group-slots.ts); throws to refuse it. */
export type Guard = (record: JobRecord) => Promise<GuardOps>;

/** Where a scan of job keys starts and ends, and its direction. */
type ScanBounds = Pick<RangeOptions, 'after' | 'before' | 'reverse'>;

const MAX_CAS_TRIES = 16;
const noFence = (): Compare[] => [];

export class JobRepo {
  readonly jobsPrefix: string;
  private readonly idemPrefix: string;
  /** `<pipeline id>/<job id>` for each job of a pipeline: what PipelineService reads to find them. */
  private readonly pipelinesPrefix: string;
  private orderSeq = 0;

  constructor(
    private readonly store: Store,
    prefix = '/runmesh/',
  ) {
    this.jobsPrefix = `${prefix}jobs/`;
    this.idemPrefix = `${prefix}idem/`;
    this.pipelinesPrefix = `${prefix}pipelines/`;
  }

  key(id: string): string {
    return this.jobsPrefix + id;
  }

  /** Where a job's idempotency key is kept: per tenant, so one tenant's key never answers with another's job. */
  private idemKey(r: JobRecord): string {
    return `${this.idemPrefix}${r.job.spec.tenant}/${r.job.spec.idempotencyKey}`;
  }

  idFromKey(key: string): string {
    return key.slice(this.jobsPrefix.length);
  }

  /** A new QUEUED record for `spec`, not yet stored. */
  draft(spec: ResolvedSpec, now: Date): JobRecord {
    return queuedRecord(newJobId(now.getTime()), spec, now, now.getTime() * 1000 + (this.orderSeq++ % 1000));
  }

  /**
   * Stores drafted QUEUED records (as they are). Those without an idempotency
   * key go in as few transactions as the store allows; one with a key is
   * stored only if the key is unused, else the job first stored under it is
   * returned (`existing`).
   */
  async storeNew(records: readonly JobRecord[]): Promise<Created[]> {
    const plain = records.filter((r) => !r.job.spec.idempotencyKey);
    const stored = new Map<string, Created>();
    for (const v of await this.storePlain(plain)) stored.set(v.record.job.id, { ...v, existing: false });
    const keyed = records.filter((r) => r.job.spec.idempotencyKey);
    for (const [i, c] of (await Promise.all(keyed.map((r) => this.storeOnce(r)))).entries()) stored.set(keyed[i]!.job.id, c);
    return records.map((r) => stored.get(r.job.id)!);
  }

  /** Stores a drafted record under its (non-empty) idempotency key; with the key already used, returns that job instead. */
  private async storeOnce(record: JobRecord): Promise<Created> {
    const key = this.key(record.job.id);
    const idemKey = this.idemKey(record);
    for (let i = 0; i < MAX_CAS_TRIES; i++) {
      const res = await this.store.txn({
        compare: [{ key: idemKey, target: 'version', op: '==', value: 0 }],
        success: [
          { type: 'put', key, value: encodeRecord(record) },
          { type: 'put', key: idemKey, value: record.job.id },
        ],
      });
      if (res.succeeded) return { record, modRevision: res.revision, existing: false };
      const first = await this.store.get(idemKey);
      const found = first ? await this.get(first.value) : undefined;
      if (found) return { ...found, existing: true };
    }
    throw new StaleWriteError(record.job.id, 'idempotency key kept changing');
  }

  private async storePlain(records: readonly JobRecord[]): Promise<Versioned[]> {
    const chunks: Array<{ ops: Op[]; records: JobRecord[] }> = [];
    for (const r of records) {
      const ops = this.putOps(r);
      let last = chunks.at(-1);
      if (!last || last.ops.length + ops.length > this.store.maxTxnOps) chunks.push((last = { ops: [], records: [] }));
      last.ops.push(...ops);
      last.records.push(r);
    }
    const results = await Promise.all(chunks.map((c) => this.store.txn({ success: c.ops })));
    return chunks.flatMap((c, i) => c.records.map((record) => ({ record, modRevision: results[i]!.revision })));
  }

  /** A job's put, and its pipeline's index entry when it has a pipeline (stored and deleted with the job). */
  private putOps(r: JobRecord): Op[] {
    const put: Op = { type: 'put', key: this.key(r.job.id), value: encodeRecord(r) };
    return r.job.pipelineId ? [put, { type: 'put', key: this.pipelineKey(r.job.pipelineId, r.job.id), value: '' }] : [put];
  }

  private pipelineKey(pipelineId: string, jobId = ''): string {
    return `${this.pipelinesPrefix}${pipelineId}/${jobId}`;
  }

  /**
   * Pipeline ids, newest submitted first, from just before `before` (the
   * newest when empty); at most `limit`, one range read each (a reverse read
   * of one key jumps over every job of the pipeline after it).
   */
  async pipelineIds(before: string, limit: number): Promise<string[]> {
    const out: string[] = [];
    let bound = before ? this.pipelineKey(before) : undefined;
    while (out.length < limit) {
      const page = await this.store.range(this.pipelinesPrefix, { before: bound, reverse: true, limit: 1 });
      const key = page.kvs[0]?.key;
      if (!key) break;
      const id = key.slice(this.pipelinesPrefix.length).split('/')[0]!;
      out.push(id);
      bound = this.pipelineKey(id);
    }
    return out;
  }

  /** The ids of a pipeline's stored jobs, in submission order (at most `limit`). */
  async pipelineJobIds(pipelineId: string, limit: number): Promise<string[]> {
    const prefix = this.pipelineKey(pipelineId);
    const page = await this.store.range(prefix, { limit });
    return page.kvs.map((kv) => kv.key.slice(prefix.length));
  }

  /**
   * Stores one drafted record, already moved on (e.g. assigned at submit),
   * only if its key does not exist yet and `fence` holds; undefined otherwise.
   */
  async insert(record: JobRecord, fence: readonly Compare[]): Promise<Versioned | undefined> {
    const key = this.key(record.job.id);
    const res = await this.store.txn({
      compare: [{ key, target: 'version', op: '==', value: 0 }, ...fence],
      success: this.putOps(record),
    });
    return res.succeeded ? { record, modRevision: res.revision } : undefined;
  }

  async get(id: string): Promise<Versioned | undefined> {
    const kv = await this.store.get(this.key(id));
    if (!kv) return undefined;
    try {
      return { record: decodeRecord(kv.value), modRevision: kv.modRevision };
    } catch (err) {
      throw new UnreadableRecordError(id, { cause: err });
    }
  }

  async mustGet(id: string): Promise<Versioned> {
    const v = await this.get(id);
    if (!v) throw new JobNotFoundError(id);
    return v;
  }

  /**
   * Read-modify-write fenced on the mod revision. With `expect`, the first try
   * uses the caller's copy; a lost race re-reads and re-applies the mutator,
   * which must itself re-check the state it depends on (attempt number, state).
   * `fence` adds compares that must also hold (the leader's term); it may throw
   * to refuse the write outright. `guard` adds what the changed record's
   * write must also compare and write (a concurrency group's slot list,
   * group-slots.ts); it may throw to refuse the write.
   */
  async update(id: string, mutate: Mutator, expect?: Versioned, fence: () => Compare[] = noFence, guard?: Guard): Promise<Versioned> {
    let current = expect ?? (await this.mustGet(id));
    for (let i = 0; i < MAX_CAS_TRIES; i++) {
      const record = cloneRecord(current.record);
      if (mutate(record) === false) return current;
      const extra = fence();
      const guarded = guard ? await guard(record) : undefined;
      const res = await this.store.txn({
        compare: [
          { key: this.key(id), target: 'modRevision', op: '==', value: current.modRevision },
          ...extra,
          ...(guarded?.compare ?? []),
        ],
        success: [{ type: 'put', key: this.key(id), value: encodeRecord(record) }, ...(guarded?.success ?? [])],
      });
      if (res.succeeded) return { record, modRevision: res.revision };
      current = await this.mustGet(id);
    }
    throw new StaleWriteError(id, 'too many concurrent writers');
  }

  /**
   * One page of jobs, newest submitted first (or oldest first), continuing
   * past the job `pageToken` names. Ids sort by submission time, so this is
   * a key range scan in the asked direction; the time bounds narrow the range.
   */
  async list(filter: ListFilter, pageSize: number, pageToken: string): Promise<{ records: JobRecord[]; next: string }> {
    const out: JobRecord[] = [];
    const states = new Set(filter.states);
    const keep = (r: JobRecord): boolean =>
      (states.size === 0 || states.has(r.job.state)) &&
      r.job.spec.name.startsWith(filter.namePrefix) &&
      filter.tenant(r.job.spec.tenant) &&
      (filter.labels.length === 0 || selectorRequires(r.job.spec.selector, filter.labels));
    for await (const page of this.pages(Math.max(pageSize * 2, 200), this.listBounds(filter, pageToken))) {
      for (const kv of page.kvs) {
        const r = decodeRecord(kv.value);
        if (!keep(r)) continue;
        out.push(r);
        if (out.length === pageSize) return { records: out, next: page.more || kv !== page.kvs.at(-1) ? r.job.id : '' };
      }
    }
    return { records: out, next: '' };
  }

  /** The key range a list reads: the time window, cut at the page token on the side the scan moves towards. */
  private listBounds(filter: ListFilter, pageToken: string): ScanBounds {
    const bounds: ScanBounds = { reverse: !filter.oldestFirst };
    if (filter.createdAfter !== undefined) bounds.after = this.key(idBoundAt(filter.createdAfter));
    if (filter.createdBefore !== undefined) bounds.before = this.key(idBoundAt(filter.createdBefore));
    const past = pageToken && this.key(pageToken);
    if (past && filter.oldestFirst && (bounds.after === undefined || past > bounds.after)) bounds.after = past;
    if (past && !filter.oldestFirst && (bounds.before === undefined || past < bounds.before)) bounds.before = past;
    return bounds;
  }

  /**
   * Jobs that ended before `cutoffMs`, oldest submission first, at most
   * `limit`. Keys sort by submission time, so the scan stops at the first job
   * submitted after the cutoff: it reads what is due plus the older jobs still
   * kept (running, or ended since), never the whole history.
   */
  async endedBefore(cutoffMs: number, limit: number): Promise<Versioned[]> {
    const out: Versioned[] = [];
    for await (const page of this.pages(500)) {
      for (const kv of page.kvs) {
        if ((jobIdTime(this.idFromKey(kv.key)) ?? 0) > cutoffMs) return out;
        const record = decodeRecord(kv.value);
        const ended = Date.parse(record.job.updatedAt ?? '');
        if (!isTerminal(record.job.state) || !(ended < cutoffMs)) continue;
        out.push({ record, modRevision: kv.modRevision });
        if (out.length >= limit) return out;
      }
    }
    return out;
  }

  /**
   * Deletes an ended job and its idempotency key, unless the record changed
   * since `v` was read or `fence` fails; true when it was deleted.
   */
  async remove(v: Versioned, fence: readonly Compare[]): Promise<boolean> {
    const key = this.key(v.record.job.id);
    const compare: Compare[] = [{ key, target: 'modRevision', op: '==', value: v.modRevision }, ...fence];
    const success: Op[] = [{ type: 'delete', key }];
    if (v.record.job.pipelineId) success.push({ type: 'delete', key: this.pipelineKey(v.record.job.pipelineId, v.record.job.id) });
    const idem = v.record.job.spec.idempotencyKey && this.idemKey(v.record);
    // The key maps to this job unless it was reused after an earlier delete: only ours goes.
    if (idem && (await this.store.get(idem))?.value === v.record.job.id) {
      compare.push({ key: idem, target: 'value', op: '==', value: v.record.job.id });
      success.push({ type: 'delete', key: idem });
    }
    return (await this.store.txn({ compare, success })).succeeded;
  }

  /**
   * Every job, page by page, for rebuilding in-memory state: `each` gets them
   * as they are read, so the ended ones (most of a long history) are garbage
   * once their page is done. Returns the revision to watch from.
   */
  async loadAll(each: (v: Versioned) => void): Promise<number> {
    let revision = 0;
    for await (const page of this.pages(1000)) {
      if (revision === 0) revision = page.revision;
      for (const kv of page.kvs) each({ record: decodeRecord(kv.value), modRevision: kv.modRevision });
    }
    return revision;
  }

  /** The job keys in order (or reverse), a page at a time, within `bounds` (every job when omitted). */
  private async *pages(pageSize: number, bounds: ScanBounds = {}): AsyncGenerator<RangeResult> {
    let { after, before } = bounds;
    for (;;) {
      const page = await this.store.range(this.jobsPrefix, { after, before, reverse: bounds.reverse, limit: pageSize });
      yield page;
      const last = page.kvs.at(-1)?.key;
      if (!page.more || !last) return;
      if (bounds.reverse) before = last;
      else after = last;
    }
  }

  /** How many jobs are stored, live and ended. */
  count(): Promise<number> {
    return this.store.count(this.jobsPrefix);
  }

  /** The id of the oldest stored job (ids sort by submission), if there is one. */
  async oldestId(): Promise<string | undefined> {
    const page = await this.store.range(this.jobsPrefix, { limit: 1 });
    const kv = page.kvs[0];
    return kv && this.idFromKey(kv.key);
  }

  watch(handlers: WatchHandlers, fromRevision?: number): Promise<Watch> {
    return this.store.watch(this.jobsPrefix, handlers, fromRevision);
  }
}
