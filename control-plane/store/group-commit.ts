/**
 * Group commit for a remote store: transactions issued while earlier ones
 * are in flight are merged into one (their compares and puts concatenated,
 * up to the store's op limit), so throughput is bounded by the store's
 * transactions per second rather than by one round trip per job transition.
 * Only transactions without a failure branch, on distinct keys, merge. If a
 * merged transaction fails, its parts are re-run one by one, so each caller
 * still learns whether its own compares held.
 */
import { IGNORE_COMMITS, secondsSince, type CommitObserver } from './commit-observer.js';
import type { Compare, Store, TxnRequest, TxnResult } from './store.js';

interface Pending {
  request: TxnRequest;
  keys: string[];
  resolve(r: TxnResult): void;
  reject(err: unknown): void;
}

/** Batches in flight at once; more pile up into the next batch. */
const MAX_IN_FLIGHT = 4;

/** `observe` is told of every Txn sent to the store: its round trip and how many callers' transactions it carried. */
export function withGroupCommit(store: Store, observe: CommitObserver = IGNORE_COMMITS): Store {
  /** One Txn to the store, timed. */
  const send = async (request: TxnRequest, txns: number): Promise<TxnResult> => {
    const started = performance.now();
    try {
      const res = await store.txn(request);
      observe({ seconds: secondsSince(started), txns, ok: res.succeeded || txns === 1 });
      return res;
    } catch (err) {
      observe({ seconds: secondsSince(started), txns, ok: false });
      throw err;
    }
  };

  let queue: Pending[] = [];
  let inFlight = 0;
  const opLimit = Math.max(2, store.maxTxnOps);

  // Only written keys clash (etcd refuses a key twice in one txn). Compares never do: all of a
  // merged txn's compares are evaluated before any of its writes, which is a serial order; one
  // that every writer shares (the leader fence) is kept once.
  const compareKey = (c: Compare): string => `${c.key}\u0000${c.target}\u0000${c.op}\u0000${String(c.value)}`;
  const keysOf = (r: TxnRequest): string[] => (r.success ?? []).map((o) => (o.type === 'deletePrefix' ? o.prefix : o.key));

  /** The next batch from the head of the queue: distinct keys, within the op limit; clashing txns wait their turn. */
  function takeBatch(): Pending[] {
    const batch: Pending[] = [];
    const waiting: Pending[] = [];
    const seen = new Set<string>();
    let ops = 0;
    let i = 0;
    for (; i < queue.length && batch.length < 256; i++) {
      const p = queue[i]!;
      if (p.keys.some((k) => seen.has(k))) {
        waiting.push(p);
        continue;
      }
      const size = Math.max(p.request.success?.length ?? 0, p.request.compare?.length ?? 0);
      if (batch.length > 0 && ops + size > opLimit) break;
      batch.push(p);
      ops += size;
      for (const k of p.keys) seen.add(k);
    }
    queue = waiting.length > 0 ? waiting.concat(queue.slice(i)) : queue.slice(i);
    return batch;
  }

  async function runAlone(p: Pending): Promise<void> {
    try {
      p.resolve(await send(p.request, 1));
    } catch (err) {
      p.reject(err);
    }
  }

  async function runBatch(batch: Pending[]): Promise<void> {
    if (batch.length === 1) return runAlone(batch[0]!);
    const compares = new Map(batch.flatMap((p) => p.request.compare ?? []).map((c) => [compareKey(c), c]));
    const merged: TxnRequest = {
      compare: [...compares.values()],
      success: batch.flatMap((p) => p.request.success ?? []),
    };
    try {
      const res = await send(merged, batch.length);
      if (res.succeeded) return batch.forEach((p) => p.resolve(res));
    } catch {
      // fall through: one by one tells each caller its own outcome (or error)
    }
    await Promise.all(batch.map(runAlone));
  }

  function pump(): void {
    while (inFlight < MAX_IN_FLIGHT && queue.length > 0) {
      const batch = takeBatch();
      if (batch.length === 0) return;
      inFlight++;
      void runBatch(batch).finally(() => {
        inFlight--;
        pump();
      });
    }
  }

  const txn = (request: TxnRequest): Promise<TxnResult> => {
    // A failure branch, or a prefix delete (whose keys we cannot see), runs on its own.
    if ((request.failure?.length ?? 0) > 0 || request.success?.some((o) => o.type === 'deletePrefix')) return send(request, 1);
    return new Promise((resolve, reject) => {
      queue.push({ request, keys: keysOf(request), resolve, reject });
      pump();
    });
  };

  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'txn') return txn;
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
