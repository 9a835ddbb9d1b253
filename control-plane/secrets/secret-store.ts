/**
 * Secrets in the store (the same store as jobs, embedded or etcd), one key
 * each: /runmesh/secrets/<tenant>/<name> → a JSON record holding the value
 * sealed by the key ring (keyring.ts) with `secret/v1 <tenant> <name>` as its
 * associated data, and metadata in the clear (times, who set it). Nothing in
 * the store, the process's logs or any answer holds a value; `resolve` is
 * the one way to one, for an attempt being assigned.
 *
 * A store error is an error, never "no such secret".
 */
import { Secret } from '../secret.js';
import type { KeyValue, Store } from '../store/store.js';
import { NoSecretsKeyError, SecretMissingError, SecretUnreadableError, TenantFullError } from './errors.js';
import type { KeyRing, Sealed } from './keyring.js';
import { SECRET_LIMITS } from './names.js';

export const SECRETS_PREFIX = '/runmesh/secrets/';
const PAGE = 500;

interface StoredSecret extends Sealed {
  readonly v: 1;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly updatedBy: string;
}

/** A secret without its value. */
export interface SecretMeta {
  readonly tenant: string;
  readonly name: string;
  readonly keyId: string;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly updatedBy: string;
}

const keyOf = (tenant: string, name: string): string => `${SECRETS_PREFIX}${tenant}/${name}`;
/** Binds a ciphertext to its place: tenant and name cannot hold '/' or NUL, so this is unambiguous. */
const aadOf = (tenant: string, name: string): Buffer => Buffer.from(`secret/v1\0${tenant}\0${name}`);

export class SecretStore {
  constructor(
    private readonly store: Store,
    /** Undefined: the server has no secrets key; every call but `list` and `exists` throws NoSecretsKeyError. */
    private readonly ring: KeyRing | undefined,
  ) {}

  /** True when secrets can be stored and resolved here. */
  get enabled(): boolean {
    return this.ring !== undefined;
  }

  /** The key ring, for other values sealed at rest (webhook secrets); undefined without a key. */
  get keyRing(): KeyRing | undefined {
    return this.ring;
  }

  /** The id of the key new values are sealed with ('' without a key). */
  get currentKeyId(): string {
    return this.ring?.currentId ?? '';
  }

  /** Creates or replaces a secret; `created` is false when it replaced one. */
  async set(tenant: string, name: string, value: Secret, by: string, now = new Date()): Promise<{ meta: SecretMeta; created: boolean }> {
    const ring = this.need();
    const key = keyOf(tenant, name);
    const before = await this.store.get(key);
    if (!before && (await this.store.count(`${SECRETS_PREFIX}${tenant}/`)) >= SECRET_LIMITS.perTenant)
      throw new TenantFullError(tenant, SECRET_LIMITS.perTenant);
    const at = now.toISOString();
    const record: StoredSecret = {
      v: 1,
      ...ring.seal(value.reveal(), aadOf(tenant, name)),
      createdAt: before ? parse(before).createdAt : at,
      updatedAt: at,
      updatedBy: by,
    };
    await this.store.put(key, JSON.stringify(record));
    return { meta: metaOf(tenant, name, record), created: !before };
  }

  /** The secrets of `tenants` ('all': every tenant), by tenant then name. */
  async list(tenants: readonly string[] | 'all'): Promise<SecretMeta[]> {
    const prefixes = tenants === 'all' ? [SECRETS_PREFIX] : [...new Set(tenants)].sort().map((t) => `${SECRETS_PREFIX}${t}/`);
    const out: SecretMeta[] = [];
    for (const prefix of prefixes) for (const kv of await this.rangeAll(prefix)) out.push(metaOfKv(kv));
    return out;
  }

  async delete(tenant: string, name: string): Promise<boolean> {
    return this.store.delete(keyOf(tenant, name));
  }

  /** Whether the secret exists (submit checks references with it); a store error throws. */
  async exists(tenant: string, name: string): Promise<boolean> {
    return (await this.store.get(keyOf(tenant, name))) !== undefined;
  }

  /** The values of `names` in `tenant`, for an attempt being assigned. Throws SecretMissingError, SecretUnreadableError, or the store's error. */
  async resolve(tenant: string, names: readonly string[]): Promise<Map<string, Secret>> {
    const ring = this.need();
    const out = new Map<string, Secret>();
    for (const name of new Set(names)) {
      const kv = await this.store.get(keyOf(tenant, name));
      if (!kv) throw new SecretMissingError(tenant, name);
      out.set(name, new Secret(open(ring, tenant, name, parse(kv))));
    }
    return out;
  }

  /**
   * Re-seals every secret not under the current key with it. Each write is
   * conditional on the record being unchanged since it was read, so a Set
   * racing with it is never undone (that secret is re-read and done again).
   */
  async reencrypt(): Promise<{ reencrypted: number; total: number }> {
    const ring = this.need();
    let reencrypted = 0;
    const all = await this.rangeAll(SECRETS_PREFIX);
    for (let kv of all) {
      for (;;) {
        const stored = parse(kv);
        if (stored.kid === ring.currentId) break;
        const { tenant, name } = placeOf(kv.key);
        const record: StoredSecret = { ...stored, ...ring.seal(open(ring, tenant, name, stored), aadOf(tenant, name)) };
        const { succeeded } = await this.store.txn({
          compare: [{ key: kv.key, target: 'modRevision', op: '==', value: kv.modRevision }],
          success: [{ type: 'put', key: kv.key, value: JSON.stringify(record) }],
        });
        if (succeeded) {
          reencrypted++;
          break;
        }
        const now = await this.store.get(kv.key);
        if (!now) break; // deleted meanwhile
        kv = now;
      }
    }
    return { reencrypted, total: all.length };
  }

  private need(): KeyRing {
    if (!this.ring) throw new NoSecretsKeyError();
    return this.ring;
  }

  private async rangeAll(prefix: string): Promise<KeyValue[]> {
    const out: KeyValue[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await this.store.range(prefix, { after, limit: PAGE });
      out.push(...page.kvs);
      if (!page.more || page.kvs.length === 0) return out;
      after = page.kvs.at(-1)!.key;
    }
  }
}

function open(ring: KeyRing, tenant: string, name: string, s: StoredSecret): string {
  try {
    return ring.open(s, aadOf(tenant, name));
  } catch (err) {
    throw new SecretUnreadableError(tenant, name, (err as Error).message, { cause: err });
  }
}

function placeOf(key: string): { tenant: string; name: string } {
  const [tenant = '', name = ''] = key.slice(SECRETS_PREFIX.length).split('/');
  return { tenant, name };
}

function parse(kv: KeyValue): StoredSecret {
  const { tenant, name } = placeOf(kv.key);
  try {
    const r = JSON.parse(kv.value) as StoredSecret;
    if (r.v !== 1 || typeof r.kid !== 'string' || typeof r.ct !== 'string') throw new Error('not a secret record');
    return r;
  } catch (err) {
    throw new SecretUnreadableError(tenant, name, 'the stored record is not one', { cause: err });
  }
}

const metaOf = (tenant: string, name: string, r: StoredSecret): SecretMeta => ({
  tenant,
  name,
  keyId: r.kid,
  createdAt: r.createdAt,
  updatedAt: r.updatedAt,
  updatedBy: r.updatedBy,
});

const metaOfKv = (kv: KeyValue): SecretMeta => {
  const { tenant, name } = placeOf(kv.key);
  return metaOf(tenant, name, parse(kv));
};
