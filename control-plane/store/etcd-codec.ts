/**
 * Translation between the store's shapes and etcd3's shapes: namespaced keys,
 * key values, and errors (txn requests are encoded in `etcd-wire.ts`; which
 * errors are connection trouble is retry.ts's call).
 */
import type { IKeyValue } from 'etcd3';
import { StoreError, StoreUnavailableError } from './errors.js';
import { isEtcdUnavailable } from './retry.js';
import type { KeyValue } from './store.js';

/** Applies and strips the store's key prefix (etcd's own namespacing, done by hand on raw requests). */
export class Keys {
  private readonly ns: Buffer;

  constructor(readonly prefix: string) {
    this.ns = Buffer.from(prefix);
  }

  key(key: string): Buffer {
    return Buffer.concat([this.ns, Buffer.from(key)]);
  }

  /** End of the range of keys starting with `prefix` (etcd's range_end); `\0` means "to the end". */
  prefixEnd(prefix: string): Buffer {
    const end = Buffer.from(this.key(prefix));
    for (let i = end.length - 1; i >= 0; i--) {
      const byte = end[i] ?? 0;
      if (byte < 0xff) {
        end[i] = byte + 1;
        return end.subarray(0, i + 1);
      }
    }
    return Buffer.from([0]);
  }

  unkey(key: Buffer): string {
    return key.subarray(this.ns.length).toString();
  }

  kv(kv: IKeyValue): KeyValue {
    return {
      key: this.unkey(kv.key),
      value: kv.value.toString(),
      createRevision: Number(kv.create_revision),
      modRevision: Number(kv.mod_revision),
      version: Number(kv.version),
      lease: Number(kv.lease),
    };
  }
}

/** Connection trouble (retryable) becomes StoreUnavailableError, anything else StoreError; the original is the cause. */
export function translateError(err: unknown, what: string): StoreError {
  if (err instanceof StoreError) return err;
  if (isEtcdUnavailable(err)) return new StoreUnavailableError(`etcd unavailable during ${what}`, { cause: err });
  return new StoreError(`etcd ${what} failed`, { cause: err });
}
