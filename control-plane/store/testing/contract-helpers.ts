/** Small helpers for the store contract suite: collecting watch events, retrying while a store comes back. */
import { sleep } from '../../../test/support/wait.js';
import type { Store, Watch, WatchEvent } from '../store.js';

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

/** A compact, comparable form of events: `put k=v`, `del k`. */
export function show(events: WatchEvent[]): string[] {
  return events.map((e) => (e.type === 'put' ? `put ${e.kv.key}=${e.kv.value}` : `del ${e.key}`));
}
