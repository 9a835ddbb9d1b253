/**
 * Translation between the store's shapes and etcd's wire shapes: namespaced
 * keys, key values, compares, ops, and errors.
 */
import { ClientClosedError, CompareResult, CompareTarget, isRecoverableError } from 'etcd3';
import type { ICompare, IKeyValue, IRequestOp } from 'etcd3';
import { StoreError, StoreUnavailableError } from './errors.js';
import type { Compare, KeyValue, Op } from './store.js';

/** Applies and strips the store's key prefix (etcd's own namespacing, done by hand on raw requests). */
export class Keys {
  private readonly ns: Buffer;

  constructor(prefix: string) {
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

  compare(c: Compare): ICompare {
    const result = COMPARE_RESULT[c.op];
    const key = this.key(c.key);
    switch (c.target) {
      case 'value':
        return { key, result, target: CompareTarget.Value, value: Buffer.from(c.value) };
      case 'version':
        return { key, result, target: CompareTarget.Version, version: c.value };
      case 'modRevision':
        return { key, result, target: CompareTarget.Mod, mod_revision: c.value };
      case 'createRevision':
        return { key, result, target: CompareTarget.Create, create_revision: c.value };
    }
  }

  op(op: Op): IRequestOp {
    switch (op.type) {
      case 'put':
        return { request_put: { key: this.key(op.key), value: Buffer.from(op.value), lease: op.lease ?? 0 } };
      case 'delete':
        return { request_delete_range: { key: this.key(op.key) } };
      case 'deletePrefix':
        return { request_delete_range: { key: this.key(op.prefix), range_end: this.prefixEnd(op.prefix) } };
    }
  }
}

const COMPARE_RESULT: Record<Compare['op'], CompareResult> = {
  '==': CompareResult.Equal,
  '!=': CompareResult.NotEqual,
  '<': CompareResult.Less,
  '>': CompareResult.Greater,
};

/** Connection trouble (retryable) becomes StoreUnavailableError, anything else StoreError; the original is the cause. */
export function translateError(err: unknown, what: string): StoreError {
  if (err instanceof StoreError) return err;
  if (isUnavailable(err)) return new StoreUnavailableError(`etcd unavailable during ${what}`, { cause: err });
  return new StoreError(`etcd ${what} failed`, { cause: err });
}

function isUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  // cockatiel (etcd3's fault handling) marks an open circuit with this property, not a class we can import.
  return isRecoverableError(err) || err instanceof ClientClosedError || 'isBrokenCircuitError' in err;
}
