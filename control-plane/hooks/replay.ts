/**
 * The replay window of inbound hooks: each accepted delivery id is kept in
 * the store (`/runmesh/hook-seen/<hook>/<sha256 of the id>`, the time as
 * value) for `windowMs`, so that a second delivery with that id, on any
 * peer, is refused. Claiming is a compare-and-swap, so two racing copies
 * cannot both pass. Bounded: past `maxIds` ids in the window for one hook,
 * the expired ones are swept, and if none are, the delivery is refused.
 */
import { createHash } from 'node:crypto';
import type { Store } from '../store/store.js';
import { SEEN_PREFIX } from './hook-store.js';

export interface ReplayOptions {
  /** Default 24 h. */
  windowMs: number;
  /** Delivery ids kept per hook, at most. Default 10 000. */
  maxIds: number;
}

export const DEFAULT_REPLAY: ReplayOptions = { windowMs: 24 * 3_600_000, maxIds: 10_000 };

export type Claim = 'claimed' | 'replay' | 'full';

export class ReplayWindow {
  constructor(
    private readonly store: Store,
    private readonly o: ReplayOptions = DEFAULT_REPLAY,
  ) {}

  /** Claims `id` for `hook`: 'replay' when it was seen within the window, 'full' when the hook has too many ids in it. */
  async claim(hook: string, id: string, now = Date.now()): Promise<Claim> {
    const key = this.key(hook, id);
    const kv = await this.store.get(key);
    if (kv && now - Number(kv.value) < this.o.windowMs) return 'replay';
    if (!kv && !(await this.room(hook, now))) return 'full';
    const res = await this.store.txn({
      compare: [kv ? { key, target: 'modRevision', op: '==', value: kv.modRevision } : { key, target: 'version', op: '==', value: 0 }],
      success: [{ type: 'put', key, value: String(now) }],
    });
    return res.succeeded ? 'claimed' : 'replay';
  }

  /** Forgets a claim whose delivery was then refused (bad payload), so a corrected re-send is not a replay. */
  async release(hook: string, id: string): Promise<void> {
    await this.store.delete(this.key(hook, id));
  }

  private key(hook: string, id: string): string {
    return `${SEEN_PREFIX}${hook}/${createHash('sha256').update(id).digest('hex').slice(0, 40)}`;
  }

  private async room(hook: string, now: number): Promise<boolean> {
    const prefix = `${SEEN_PREFIX}${hook}/`;
    if ((await this.store.count(prefix)) < this.o.maxIds) return true;
    let after: string | undefined;
    let freed = 0;
    for (;;) {
      const page = await this.store.range(prefix, { after, limit: 1000 });
      for (const kv of page.kvs) if (now - Number(kv.value) >= this.o.windowMs && (await this.store.delete(kv.key))) freed++;
      after = page.kvs.at(-1)?.key;
      if (!page.more || !after) return freed > 0;
    }
  }
}
