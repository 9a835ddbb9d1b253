/**
 * Outbound event hooks. Every peer turns the job endings its tracker sees
 * into deliveries (Deliveries.enqueue: one per hook and event whatever peer
 * is first, since the id is derived from the event); only the leader sends
 * them, so each is POSTed by one peer at a time. A delivery is retried with
 * doubling backoff until the receiver answers 2xx or the attempts run out;
 * after a failover the new leader sends what is still in the outbox, under
 * the same delivery id: at least once, and a receiver can drop repeats by
 * `X-Runmesh-Delivery`.
 */
import type { Logger } from 'pino';
import type { Hook } from '../../proto/gen/runmesh/v1/hook.js';
import type { Job } from '../../proto/gen/runmesh/v1/job.js';
import type { Deliveries, Due, StoredDelivery } from './deliveries.js';
import type { HookStore } from './hook-store.js';
import { agentBody, jobBody, jobEvent, type HookEvent } from './outbound-events.js';
import { HEADERS, sign, signedContent } from './signature.js';

export interface RetryOptions {
  /** Wait before the second attempt; doubled each time. Default 1 s. */
  firstMs: number;
  /** Longest wait between attempts. Default 10 min. */
  maxDelayMs: number;
  /** Attempts in all. Default 12 (about 37 min from first to last). */
  maxAttempts: number;
  /** One attempt's deadline. Default 10 s. */
  timeoutMs: number;
}

export const DEFAULT_RETRY: RetryOptions = { firstMs: 1000, maxDelayMs: 10 * 60_000, maxAttempts: 12, timeoutMs: 10_000 };

export interface OutboundOptions {
  hooks: HookStore;
  deliveries: Deliveries;
  isLeader(): boolean;
  logger: Logger;
  retry?: RetryOptions;
}

/** An ending older than this when a tracker (re)loads it is history, not an event. */
const FRESH_MS = 60_000;
/** How long the list of hooks is reused between events. */
const HOOKS_TTL_MS = 2000;
const IDLE_MS = 1000;
const MAX_IN_FLIGHT = 16;

export class OutboundHooks {
  private readonly retry: RetryOptions;
  private readonly log: Logger;
  private readonly inFlight = new Set<string>();
  private cached: { at: number; hooks: Promise<Hook[]> } | undefined;
  private wake: (() => void) | undefined;
  private closed = false;
  private loop: Promise<void> | undefined;

  constructor(private readonly o: OutboundOptions) {
    this.retry = o.retry ?? DEFAULT_RETRY;
    this.log = o.logger.child({ part: 'hooks-out' });
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** A job's record changed: queues its ending for the hooks that want it. Never throws. */
  jobChanged(job: Job, now = new Date()): void {
    const event = jobEvent(job);
    if (!event || now.getTime() - Date.parse(job.updatedAt ?? '') > FRESH_MS) return;
    const tenant = job.spec?.tenant ?? '';
    void this.enqueue(event, job.id, tenant, (id) => jobBody(event, id, job, now), now);
  }

  /** The leader declared `agent` lost: queued for every hook that wants agent.lost. Never throws. */
  agentLost(agent: string, jobs: readonly string[], reason: string, now = new Date()): void {
    void this.enqueue('agent.lost', `${agent}.${now.getTime()}`, undefined, (id) => agentBody(id, agent, jobs, reason, now), now);
  }

  /** The leader changed: the new one looks at the outbox at once. */
  kick(): void {
    this.wake?.();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.kick();
    await this.loop;
  }

  private async enqueue(
    event: HookEvent,
    subject: string,
    tenant: string | undefined,
    body: (id: string) => string,
    now: Date,
  ): Promise<void> {
    try {
      const hooks = (await this.hooksList()).filter(
        (h) => h.url && h.events.includes(event) && (tenant === undefined || h.tenant === tenant),
      );
      for (const h of hooks) {
        const id = `${event}.${subject}`;
        const at = now.toISOString();
        const d = {
          id,
          event,
          subject,
          statusCode: 0,
          attempts: 0,
          delivered: false,
          pending: true,
          error: '',
          createdAt: at,
          updatedAt: at,
        };
        const queued = await this.o.deliveries.enqueue(h.name, d, body(id));
        if (queued === 'full') this.log.warn({ hook: h.name, event, subject }, 'hook outbox full: event not queued');
        if (queued === 'queued' && this.o.isLeader()) this.kick();
      }
    } catch (err) {
      this.log.error({ err, event, subject }, 'could not queue a hook delivery');
    }
  }

  private hooksList(): Promise<Hook[]> {
    const now = Date.now();
    if (!this.cached || now - this.cached.at > HOOKS_TTL_MS) {
      const hooks = this.o.hooks.list();
      hooks.catch(() => (this.cached = undefined));
      this.cached = { at: now, hooks };
    }
    return this.cached.hooks;
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      let waitMs = IDLE_MS;
      if (this.o.isLeader()) {
        try {
          const now = Date.now();
          for (const due of await this.o.deliveries.due()) {
            if (due.at > now) {
              waitMs = Math.min(waitMs, due.at - now);
              break;
            }
            const key = `${due.hook}/${due.id}`;
            if (this.inFlight.has(key) || this.inFlight.size >= MAX_IN_FLIGHT) continue;
            this.inFlight.add(key);
            void this.attempt(due).finally(() => {
              this.inFlight.delete(key);
              this.kick();
            });
          }
        } catch (err) {
          this.log.error({ err }, 'could not read the hook outbox');
        }
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(10, waitMs));
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  private async attempt(due: Due): Promise<void> {
    try {
      const [stored, open] = await Promise.all([this.o.deliveries.get(due.hook, due.id), this.o.hooks.open(due.hook)]);
      if (!stored || !open?.hook.url || !stored.delivery.pending) return await this.o.deliveries.drop(due.hook, due.id);
      const outcome = await this.post(open.hook.url, open.secret.reveal(), stored);
      const attempts = stored.delivery.attempts + 1;
      const more = !outcome.ok && attempts < this.retry.maxAttempts;
      const next: StoredDelivery = {
        ...stored,
        delivery: {
          ...stored.delivery,
          attempts,
          statusCode: outcome.status,
          delivered: outcome.ok,
          pending: more,
          error: outcome.error,
          updatedAt: new Date().toISOString(),
        },
      };
      const delay = Math.min(this.retry.maxDelayMs, this.retry.firstMs * 2 ** (attempts - 1));
      await this.o.deliveries.settle(due.hook, next, more ? Date.now() + delay : undefined);
      this.log.info({ hook: due.hook, delivery: due.id, status: outcome.status, attempts, pending: more }, 'hook delivery attempted');
    } catch (err) {
      this.log.error({ err, hook: due.hook, delivery: due.id }, 'hook delivery could not be recorded');
    }
  }

  private async post(url: string, secret: string, s: StoredDelivery): Promise<{ ok: boolean; status: number; error: string }> {
    const body = Buffer.from(s.body);
    const timestamp = String(Math.floor(Date.now() / 1000));
    try {
      const res = await fetch(url, {
        method: 'POST',
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.retry.timeoutMs),
        headers: {
          'content-type': 'application/json',
          'user-agent': 'runmesh-hooks',
          [HEADERS.signature]: sign(secret, signedContent(body, timestamp)),
          [HEADERS.timestamp]: timestamp,
          [HEADERS.delivery]: s.delivery.id,
          [HEADERS.event]: s.delivery.event,
        },
      });
      await res.body?.cancel();
      const ok = res.status >= 200 && res.status < 300;
      return { ok, status: res.status, error: ok ? '' : `HTTP ${res.status}` };
    } catch (err) {
      return { ok: false, status: 0, error: ((err as Error).cause as Error | undefined)?.message ?? (err as Error).message };
    }
  }
}
