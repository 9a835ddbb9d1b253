/**
 * Hooks in the store: `/runmesh/hooks/<name>` (names are unique across
 * tenants, since `/hooks/NAME` names no tenant), the hook as JSON and its
 * secret sealed by the secrets key ring with `hook/v1 <tenant> <name>` as
 * associated data, so a sealed secret moved to another hook does not open.
 * Deleting a hook deletes its replay memory and its delivery history.
 */
import { NamedError, hasCause } from '../../proto/cause.js';
import { Hook } from '../../proto/gen/runmesh/v1/hook.js';
import { Secret } from '../secret.js';
import type { KeyRing, Sealed } from '../secrets/index.js';
import type { Store } from '../store/store.js';
import { RecordExistsError, RecordNotFoundError, RecordUnreadableError, TenantRecordsFullError } from '../store/tenant-records.js';

export const HOOKS_PREFIX = '/runmesh/hooks/';
export const SEEN_PREFIX = '/runmesh/hook-seen/';
export const DELIVERIES_PREFIX = '/runmesh/hook-deliveries/';
/** Hooks one tenant may have: one tenant filling the cluster's room would keep every other from making any. */
export const MAX_HOOKS_PER_TENANT = 100;
/** Hooks in the whole cluster, at most. */
export const MAX_HOOKS = 5000;

interface StoredHook {
  v: 1;
  hook: unknown;
  secret: Sealed;
}

/** A hook and its secret, opened. */
export interface OpenHook {
  hook: Hook;
  secret: Secret;
}

const aadOf = (tenant: string, name: string): Buffer => Buffer.from(`hook/v1\0${tenant}\0${name}`);

export class HookStore {
  constructor(
    private readonly store: Store,
    /** Undefined: the server has no secrets key, and hooks cannot be made or used. */
    private readonly ring: KeyRing | undefined,
  ) {}

  get enabled(): boolean {
    return this.ring !== undefined;
  }

  /** RecordExistsError when the name is taken in any tenant; TenantRecordsFullError past MAX_HOOKS_PER_TENANT, HooksFullError past MAX_HOOKS. */
  async create(hook: Hook, secret: Secret): Promise<void> {
    const ring = this.need();
    const all = await this.list();
    if (all.filter((h) => h.tenant === hook.tenant).length >= MAX_HOOKS_PER_TENANT)
      throw new TenantRecordsFullError('hook', hook.tenant, MAX_HOOKS_PER_TENANT);
    if (all.length >= MAX_HOOKS) throw new HooksFullError();
    const record: StoredHook = { v: 1, hook: Hook.toJSON(hook), secret: ring.seal(secret.reveal(), aadOf(hook.tenant, hook.name)) };
    const key = HOOKS_PREFIX + hook.name;
    const res = await this.store.txn({
      compare: [{ key, target: 'version', op: '==', value: 0 }],
      success: [{ type: 'put', key, value: JSON.stringify(record) }],
    });
    if (!res.succeeded) throw new RecordExistsError('hook', hook.tenant, hook.name);
  }

  /** The hook named `name`, secret opened; undefined when there is none. A store error throws. */
  async open(name: string): Promise<OpenHook | undefined> {
    const kv = await this.store.get(HOOKS_PREFIX + name);
    if (!kv) return undefined;
    const stored = parse(kv.key, kv.value);
    const hook = Hook.fromJSON(stored.hook);
    try {
      return { hook, secret: new Secret(this.need().open(stored.secret, aadOf(hook.tenant, hook.name))) };
    } catch (err) {
      throw new RecordUnreadableError(`hook ${name}: its secret cannot be opened`, { cause: err });
    }
  }

  /** Hook `name`, without its secret; undefined when there is none. */
  async get(name: string): Promise<Hook | undefined> {
    const kv = await this.store.get(HOOKS_PREFIX + name);
    return kv && Hook.fromJSON(parse(kv.key, kv.value).hook);
  }

  /** Every hook (no secrets), by name. */
  async list(): Promise<Hook[]> {
    const out: Hook[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await this.store.range(HOOKS_PREFIX, { after, limit: 500 });
      for (const kv of page.kvs) out.push(Hook.fromJSON(parse(kv.key, kv.value).hook));
      after = page.kvs.at(-1)?.key;
      if (!page.more || !after) return out;
    }
  }

  /** Deletes hook `name` of `tenant` with its replay memory and deliveries; RecordNotFoundError when that tenant has none. */
  async delete(tenant: string, name: string): Promise<Hook> {
    const kv = await this.store.get(HOOKS_PREFIX + name);
    const hook = kv && Hook.fromJSON(parse(kv.key, kv.value).hook);
    if (!kv || !hook || hook.tenant !== tenant) throw new RecordNotFoundError('hook', tenant, name);
    await this.store.txn({
      compare: [{ key: kv.key, target: 'modRevision', op: '==', value: kv.modRevision }],
      success: [
        { type: 'delete', key: kv.key },
        { type: 'deletePrefix', prefix: `${SEEN_PREFIX}${name}/` },
        { type: 'deletePrefix', prefix: `${DELIVERIES_PREFIX}${name}/` },
      ],
    });
    return hook;
  }

  /**
   * Re-seals every hook secret not under the current key with it (`secrets
   * rotate-key`), each write conditional on the hook being unchanged since it
   * was read (a hook deleted or made again meanwhile is left as it now is).
   * Without a key there is nothing sealed to re-seal.
   */
  async reseal(): Promise<{ resealed: number; total: number }> {
    const ring = this.ring;
    if (!ring) return { resealed: 0, total: 0 };
    let resealed = 0;
    let total = 0;
    let after: string | undefined;
    for (;;) {
      const page = await this.store.range(HOOKS_PREFIX, { after, limit: 500 });
      for (const kv of page.kvs) {
        total++;
        const stored = parse(kv.key, kv.value);
        if (stored.secret.kid === ring.currentId) continue;
        const hook = Hook.fromJSON(stored.hook);
        const aad = aadOf(hook.tenant, hook.name);
        let plain: string;
        try {
          plain = ring.open(stored.secret, aad);
        } catch (err) {
          throw new RecordUnreadableError(`hook ${hook.name}: its secret cannot be opened to re-seal it`, { cause: err });
        }
        const record: StoredHook = { ...stored, secret: ring.seal(plain, aad) };
        const res = await this.store.txn({
          compare: [{ key: kv.key, target: 'modRevision', op: '==', value: kv.modRevision }],
          success: [{ type: 'put', key: kv.key, value: JSON.stringify(record) }],
        });
        if (res.succeeded) resealed++;
      }
      after = page.kvs.at(-1)?.key;
      if (!page.more || !after) return { resealed, total };
    }
  }

  private need(): KeyRing {
    if (!this.ring) throw new NoHookKeyError();
    return this.ring;
  }
}

/** The cluster holds MAX_HOOKS hooks. RESOURCE_EXHAUSTED. */
export class HooksFullError extends NamedError {
  constructor() {
    super(`the cluster has ${MAX_HOOKS} hooks, the most it may have; delete one first`);
  }
}

/** The server has no secrets key: a hook's secret could not be stored sealed. FAILED_PRECONDITION. */
export class NoHookKeyError extends NamedError {
  constructor() {
    super('hooks need a secrets key to seal their secrets: start the server with --secrets-key-file');
  }
}

export const isNoHookKey = (err: unknown): boolean => hasCause(err, NoHookKeyError);
export const isHooksFull = (err: unknown): boolean => hasCause(err, HooksFullError);

function parse(key: string, text: string): StoredHook {
  try {
    const v = JSON.parse(text) as StoredHook;
    if (v.v !== 1 || !v.secret || !v.hook) throw new Error('not a hook record');
    return v;
  } catch (err) {
    throw new RecordUnreadableError(`${key}: unreadable hook record`, { cause: err });
  }
}
