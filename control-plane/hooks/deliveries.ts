/**
 * Outbound deliveries in the store. Each event for a hook is one record,
 * `/runmesh/hook-deliveries/<hook>/<delivery id>` (the history: event,
 * attempts, last status), created once whatever peer saw the event first (a
 * compare-and-swap on the id, which is derived from the event), plus, while
 * it is still to be sent, `/runmesh/hook-outbox/<hook>/<id>` holding when to
 * try next: the leader's sender reads only the outbox. A hook keeps its last
 * HISTORY deliveries; older settled ones are deleted.
 */
import { HookDelivery } from '../../proto/gen/runmesh/v1/hook.js';
import type { Store } from '../store/store.js';
import { DELIVERIES_PREFIX } from './hook-store.js';

export const OUTBOX_PREFIX = '/runmesh/hook-outbox/';
/** Settled deliveries kept per hook. */
export const HISTORY = 100;
/** Deliveries still to be sent per hook, at most: past it (a receiver down while thousands of jobs end) new events are not queued. */
export const MAX_PENDING = 1000;

export interface StoredDelivery {
  delivery: HookDelivery;
  /** The JSON body, sent as is on every attempt. */
  body: string;
}

export interface Due {
  hook: string;
  id: string;
  /** Epoch ms of the next attempt. */
  at: number;
}

const recordKey = (hook: string, id: string): string => `${DELIVERIES_PREFIX}${hook}/${id}`;
const outboxKey = (hook: string, id: string): string => `${OUTBOX_PREFIX}${hook}/${id}`;

export class Deliveries {
  constructor(private readonly store: Store) {}

  /**
   * Records a new delivery, due now; 'exists' when one with that id does (another peer saw the event first),
   * 'full' when the hook has MAX_PENDING deliveries waiting.
   */
  async enqueue(hook: string, d: HookDelivery, body: string): Promise<'queued' | 'exists' | 'full'> {
    if ((await this.store.count(`${OUTBOX_PREFIX}${hook}/`)) >= MAX_PENDING) return 'full';
    const key = recordKey(hook, d.id);
    const res = await this.store.txn({
      compare: [{ key, target: 'version', op: '==', value: 0 }],
      success: [
        { type: 'put', key, value: encode({ delivery: d, body }) },
        { type: 'put', key: outboxKey(hook, d.id), value: String(Date.now()) },
      ],
    });
    if (!res.succeeded) return 'exists';
    await this.prune(hook);
    return 'queued';
  }

  /** Every delivery still to be sent, soonest first. */
  async due(): Promise<Due[]> {
    const out: Due[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await this.store.range(OUTBOX_PREFIX, { after, limit: 1000 });
      for (const kv of page.kvs) {
        const [hook = '', id = ''] = kv.key.slice(OUTBOX_PREFIX.length).split('/');
        out.push({ hook, id, at: Number(kv.value) || 0 });
      }
      after = page.kvs.at(-1)?.key;
      if (!page.more || !after) return out.sort((a, b) => a.at - b.at);
    }
  }

  async get(hook: string, id: string): Promise<StoredDelivery | undefined> {
    const kv = await this.store.get(recordKey(hook, id));
    return kv && decode(kv.value);
  }

  /** Stores an attempt's outcome; `nextAt` set: due again then, else settled (out of the outbox). */
  async settle(hook: string, s: StoredDelivery, nextAt?: number): Promise<void> {
    await this.store.txn({
      compare: [],
      success: [
        { type: 'put', key: recordKey(hook, s.delivery.id), value: encode(s) },
        nextAt === undefined
          ? { type: 'delete', key: outboxKey(hook, s.delivery.id) }
          : { type: 'put', key: outboxKey(hook, s.delivery.id), value: String(nextAt) },
      ],
    });
  }

  /** Drops an outbox entry whose hook or record is gone. */
  async drop(hook: string, id: string): Promise<void> {
    await this.store.delete(outboxKey(hook, id));
  }

  /** A hook's deliveries, newest first. */
  async list(hook: string): Promise<HookDelivery[]> {
    const page = await this.store.range(`${DELIVERIES_PREFIX}${hook}/`, { limit: (HISTORY + MAX_PENDING) * 2 });
    return page.kvs.map((kv) => decode(kv.value).delivery).sort((a, b) => (b.createdAt ?? '').localeCompare(a.createdAt ?? ''));
  }

  private async prune(hook: string): Promise<void> {
    const all = await this.list(hook);
    for (const d of all.slice(HISTORY).filter((x) => !x.pending)) await this.store.delete(recordKey(hook, d.id));
  }
}

const encode = (s: StoredDelivery): string => JSON.stringify({ delivery: HookDelivery.toJSON(s.delivery), body: s.body });

function decode(text: string): StoredDelivery {
  const v = JSON.parse(text) as { delivery: unknown; body: string };
  return { delivery: HookDelivery.fromJSON(v.delivery), body: v.body };
}
