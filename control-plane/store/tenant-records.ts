/**
 * Named records of a tenant (schedules, templates): one key per record,
 * `<prefix><tenant>/<name>`, with a cap per tenant, every change a
 * compare-and-swap on the record's mod revision. A record that cannot be
 * decoded is an error, never "absent".
 */
import { hasCause, NamedError } from '../../proto/cause.js';
import type { Compare, Op, Store } from './store.js';

export class TenantRecordError extends NamedError {}

export class RecordExistsError extends TenantRecordError {
  constructor(kind: string, tenant: string, name: string) {
    super(`${kind} ${name} already exists in tenant ${tenant}`);
  }
}

export class RecordNotFoundError extends TenantRecordError {
  constructor(kind: string, tenant: string, name: string) {
    super(`${kind} ${name} not found in tenant ${tenant}`);
  }
}

export class TenantRecordsFullError extends TenantRecordError {
  constructor(kind: string, tenant: string, limit: number) {
    super(`tenant ${tenant} has ${limit} ${kind}s, the most it may have; delete one first`);
  }
}

/** The record changed under a read-modify-write too many times in a row. */
export class RecordBusyError extends TenantRecordError {}

export class RecordUnreadableError extends TenantRecordError {}

export const isRecordExists = (err: unknown): boolean => hasCause(err, RecordExistsError);
export const isRecordNotFound = (err: unknown): boolean => hasCause(err, RecordNotFoundError);
export const isTenantRecordsFull = (err: unknown): boolean => hasCause(err, TenantRecordsFullError);
export const isRecordBusy = (err: unknown): boolean => hasCause(err, RecordBusyError);

/** A record and the mod revision it was read at (what a compare-and-swap compares). */
export interface VersionedRecord<T> {
  value: T;
  modRevision: number;
}

export interface TenantRecordsOptions<T> {
  /** `/runmesh/schedules/`: records are at `<prefix><tenant>/<name>`. */
  prefix: string;
  /** "schedule", for messages. */
  kind: string;
  /** Records per tenant at most. */
  perTenant: number;
  encode(value: T): string;
  decode(text: string): T;
}

const MAX_CAS_TRIES = 16;
const PAGE = 500;

export class TenantRecords<T> {
  constructor(
    private readonly store: Store,
    private readonly o: TenantRecordsOptions<T>,
  ) {}

  get prefix(): string {
    return this.o.prefix;
  }

  key(tenant: string, name: string): string {
    return `${this.o.prefix}${tenant}/${name}`;
  }

  /** Stores a new record; RecordExistsError when the name is taken (unless `replace`), TenantRecordsFullError past the cap. */
  async create(tenant: string, name: string, value: T, replace = false): Promise<VersionedRecord<T>> {
    const key = this.key(tenant, name);
    const existing = await this.store.get(key);
    if (existing && !replace) throw new RecordExistsError(this.o.kind, tenant, name);
    if (!existing && (await this.store.count(`${this.o.prefix}${tenant}/`)) >= this.o.perTenant)
      throw new TenantRecordsFullError(this.o.kind, tenant, this.o.perTenant);
    const text = this.o.encode(value);
    const res = await this.store.txn({
      compare: [
        existing ? { key, target: 'modRevision', op: '==', value: existing.modRevision } : { key, target: 'version', op: '==', value: 0 },
      ],
      success: [{ type: 'put', key, value: text }],
    });
    if (!res.succeeded) throw new RecordExistsError(this.o.kind, tenant, name);
    return { value, modRevision: res.revision };
  }

  async get(tenant: string, name: string): Promise<VersionedRecord<T> | undefined> {
    const kv = await this.store.get(this.key(tenant, name));
    return kv && { value: this.decode(kv.key, kv.value), modRevision: kv.modRevision };
  }

  async mustGet(tenant: string, name: string): Promise<VersionedRecord<T>> {
    const v = await this.get(tenant, name);
    if (!v) throw new RecordNotFoundError(this.o.kind, tenant, name);
    return v;
  }

  /** The records of the tenants `tenants` accepts, by tenant then name. */
  async list(tenants: (tenant: string) => boolean, only?: string): Promise<Array<VersionedRecord<T>>> {
    const prefix = only ? `${this.o.prefix}${only}/` : this.o.prefix;
    const out: Array<VersionedRecord<T>> = [];
    let after: string | undefined;
    for (;;) {
      const page = await this.store.range(prefix, { after, limit: PAGE });
      for (const kv of page.kvs) {
        const tenant = kv.key.slice(this.o.prefix.length).split('/')[0] ?? '';
        if (tenants(tenant)) out.push({ value: this.decode(kv.key, kv.value), modRevision: kv.modRevision });
      }
      after = page.kvs.at(-1)?.key;
      if (!page.more || !after) return out;
    }
  }

  /**
   * Read-modify-write: `mutate` returns the new value (or undefined to write
   * nothing), re-run on a lost race. RecordNotFoundError when there is none.
   */
  async update(tenant: string, name: string, mutate: (value: T) => T | undefined): Promise<VersionedRecord<T>> {
    for (let i = 0; i < MAX_CAS_TRIES; i++) {
      const current = await this.mustGet(tenant, name);
      const next = mutate(current.value);
      if (next === undefined) return current;
      const done = await this.swap(tenant, name, current.modRevision, next);
      if (done) return done;
    }
    throw new RecordBusyError(`${this.o.kind} ${name} of tenant ${tenant} kept changing; retry`);
  }

  /**
   * Replaces the record read at `modRevision` with `next`, with `extra` ops
   * in the same transaction, only while `fence` holds too; undefined when the
   * record changed since (or the fence failed).
   */
  async swap(
    tenant: string,
    name: string,
    modRevision: number,
    next: T,
    extra: readonly Op[] = [],
    fence: readonly Compare[] = [],
  ): Promise<VersionedRecord<T> | undefined> {
    const key = this.key(tenant, name);
    const res = await this.store.txn({
      compare: [{ key, target: 'modRevision', op: '==', value: modRevision }, ...fence],
      success: [{ type: 'put', key, value: this.o.encode(next) }, ...extra],
    });
    return res.succeeded ? { value: next, modRevision: res.revision } : undefined;
  }

  /** Deletes the record; returns it as it was. RecordNotFoundError when there is none. */
  async delete(tenant: string, name: string): Promise<T> {
    const key = this.key(tenant, name);
    for (let i = 0; i < MAX_CAS_TRIES; i++) {
      const current = await this.mustGet(tenant, name);
      const res = await this.store.txn({
        compare: [{ key, target: 'modRevision', op: '==', value: current.modRevision }],
        success: [{ type: 'delete', key }],
      });
      if (res.succeeded) return current.value;
    }
    throw new RecordBusyError(`${this.o.kind} ${name} of tenant ${tenant} kept changing; retry`);
  }

  /** Decodes a stored value; a record that cannot be read is an error naming its key. */
  decode(key: string, text: string): T {
    try {
      return this.o.decode(text);
    } catch (err) {
      throw new RecordUnreadableError(`${this.o.kind} record ${key} cannot be read`, { cause: err });
    }
  }
}
