/** Small helpers for the store contract suite: collecting watch events, bounded waiting. */
import type { Store, Watch, WatchEvent } from './store.js';

export interface Collected {
  groups: WatchEvent[][];
  errors: Error[];
  watch: Watch;
}

/** Watches `prefix` and records every delivered group and error. */
export async function collect(store: Store, prefix: string, fromRevision?: number): Promise<Collected> {
  const groups: WatchEvent[][] = [];
  const errors: Error[] = [];
  const watch = await store.watch(prefix, { onEvents: (events) => groups.push(events), onError: (err) => errors.push(err) }, fromRevision);
  return { groups, errors, watch };
}

/** Polls `check` until it returns true or throws no more; bounded by `timeoutMs`. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
      last = undefined;
    } catch (err) {
      last = err;
    }
    await sleep(25);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: last });
}

/** Retries `fn` until it resolves (the store is coming back after a restart); bounded. */
export async function retrying<T>(fn: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(100);
    }
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A compact, comparable form of events: `put k=v`, `del k`. */
export function show(events: WatchEvent[]): string[] {
  return events.map((e) => (e.type === 'put' ? `put ${e.kv.key}=${e.kv.value}` : `del ${e.key}`));
}
