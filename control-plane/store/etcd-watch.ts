/**
 * One etcd watch on its own gRPC stream, resumed after a disconnect from the
 * revision after the last one delivered.
 *
 * We drive the raw Watch RPC rather than etcd3's `Watcher` for two reasons:
 * etcd3 resumes from the last response header's revision + 1, which during a
 * catch-up (responses carry up to 1,000 old revisions under a newer header)
 * skips events; and it drops `compact_revision`, which `CompactedError` needs.
 */
import type { IDuplexStream, IWatchRequest, IWatchResponse, WatchClient } from 'etcd3';
import type pino from 'pino';
import { Backoff } from '../../transport/retry.js';
import { CompactedError, StoreError } from './errors.js';
import { translateError, type Keys } from './etcd-codec.js';
import { WATCH_RECONNECT } from './retry.js';
import type { Watch, WatchEvent, WatchHandlers } from './store.js';

type Stream = IDuplexStream<IWatchRequest, IWatchResponse>;

/** One watch of a prefix, from a revision on. */
export interface EtcdWatchRequest {
  prefix: string;
  handlers: WatchHandlers;
  /** First revision still to deliver (etcd's start_revision). */
  from: number;
}

/** What a watch runs on: the store's watch client, its key namespace and logger. */
export interface EtcdWatchContext {
  client: WatchClient;
  keys: Keys;
  log: pino.Logger;
  /** Called once when the watch ends for any reason, so the store forgets it. */
  onEnd: (w: EtcdWatch) => void;
  /** Drops etcd's auth token, so the next stream authenticates again (a no-op without a user). */
  renewAuth: () => void;
}

export class EtcdWatch implements Watch {
  private stream: Stream | undefined;
  private closed = false;
  private readonly backoff = new Backoff(WATCH_RECONNECT);
  private retryTimer: NodeJS.Timeout | undefined;
  /** Events of the revision being received when a response ends mid-revision (fragments). */
  private partial: WatchEvent[] = [];

  private readonly client: WatchClient;
  private readonly keys: Keys;
  private readonly log: pino.Logger;
  private readonly onEnd: (w: EtcdWatch) => void;
  private readonly renewAuth: () => void;
  private readonly prefix: string;
  private readonly handlers: WatchHandlers;
  /** First revision still to deliver (etcd's start_revision). */
  private next: number;

  constructor(ctx: EtcdWatchContext, request: EtcdWatchRequest) {
    ({ client: this.client, keys: this.keys, log: this.log, onEnd: this.onEnd, renewAuth: this.renewAuth } = ctx);
    ({ prefix: this.prefix, handlers: this.handlers, from: this.next } = request);
  }

  /** Opens the stream; resolves once etcd confirmed the watch (or rejects). */
  async start(): Promise<void> {
    try {
      await this.connect(true);
    } catch (err) {
      this.shutdown();
      throw translateError(err, 'watch');
    }
  }

  close(): Promise<void> {
    this.shutdown();
    return Promise.resolve();
  }

  /** Ends the watch with an error delivered to the owner (compaction, store closed). */
  fail(err: Error): void {
    if (this.closed) return;
    this.shutdown();
    this.handlers.onError(err);
  }

  private shutdown(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.stream?.cancel();
    this.stream = undefined;
    this.onEnd(this);
  }

  /** Opens a stream and asks for the watch; with `confirm`, waits for etcd's "created". */
  private async connect(confirm: boolean): Promise<void> {
    const stream = await this.client.watch();
    if (this.closed) return stream.cancel();
    this.stream = stream;
    this.partial = [];
    const created = new Promise<void>((resolve, reject) => {
      stream.on('data', (res) => {
        if (confirm && res.created && res.canceled) {
          // Refused at creation: start() rejects; the owner never had a watch to fail.
          reject(new StoreError(`etcd refused the watch: ${res.cancel_reason || 'no reason given'}`));
          this.shutdown();
          return;
        }
        if (res.created && res.canceled) {
          // Refused on resuming a watch etcd once allowed: etcd forgot our auth token (a restart, its TTL), and
          // says only "permission denied". Authenticate again and resume, as after any break.
          this.renewAuth();
          this.onBroken(stream, new StoreError(`etcd refused the resumed watch: ${res.cancel_reason || 'no reason given'}`));
          return;
        }
        if (res.created) resolve();
        this.onResponse(res);
      });
      stream.on('error', (err) => {
        reject(err);
        this.onBroken(stream, err);
      });
      stream.on('end', () => this.onBroken(stream, new Error('watch stream ended')));
    });
    created.catch(() => undefined); // a broken stream is handled by onBroken
    stream.write({
      create_request: {
        key: this.keys.key(this.prefix),
        range_end: this.keys.prefixEnd(this.prefix),
        start_revision: this.next,
        progress_notify: true,
        // Lets etcd split a revision over its message limit (a catch-up after a long break) instead of
        // sending one message larger than the client accepts, which would fail the watch on every resume.
        fragment: true,
      },
    });
    if (confirm) await created;
  }

  private onResponse(res: IWatchResponse): void {
    if (this.closed) return;
    if (Number(res.compact_revision) > 0) {
      this.fail(new CompactedError(this.next - 1, Number(res.compact_revision)));
      return;
    }
    if (res.canceled) {
      this.fail(new StoreError(`etcd cancelled the watch: ${res.cancel_reason || 'no reason given'}`));
      return;
    }
    this.backoff.reset();
    const events = res.events.map((e): WatchEvent => {
      const revision = Number(e.kv.mod_revision);
      return e.type === 'Delete'
        ? { type: 'delete', key: this.keys.unkey(e.kv.key), revision }
        : { type: 'put', kv: this.keys.kv(e.kv), revision };
    });
    this.partial.push(...events);
    if (!res.fragment) this.deliver();
  }

  /** Hands over complete revisions in order; `next` moves past each one as it goes. */
  private deliver(): void {
    const events = this.partial;
    this.partial = [];
    let start = 0;
    while (start < events.length && !this.closed) {
      const revision = events[start]?.revision ?? 0;
      let end = start;
      while (end < events.length && events[end]?.revision === revision) end++;
      const group = events.slice(start, end).sort(byKey);
      this.next = revision + 1;
      try {
        this.handlers.onEvents(group);
      } catch (err) {
        this.log.error({ err }, 'watch handler threw');
      }
      start = end;
    }
  }

  private onBroken(stream: Stream, err: Error): void {
    if (this.stream !== stream || this.closed) return;
    this.stream = undefined;
    stream.cancel();
    this.log.warn({ err, next: this.next }, 'etcd watch broke, resuming');
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const delay = this.backoff.next();
    this.retryTimer = setTimeout(() => {
      this.connect(false).catch((err: unknown) => {
        if (this.closed) return;
        this.log.debug({ err }, 'etcd watch reconnect failed');
        this.scheduleReconnect();
      });
    }, delay);
  }
}

const keyOf = (e: WatchEvent): string => (e.type === 'put' ? e.kv.key : e.key);
const byKey = (a: WatchEvent, b: WatchEvent): number => (keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0);
