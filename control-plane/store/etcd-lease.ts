/**
 * An etcd lease kept alive in the background.
 *
 * We grant leases with ids we pick instead of etcd3's `Lease`: etcd's own ids
 * are 63-bit and do not survive a JavaScript number, while `KeyValue.lease`
 * and `Lease.id` are numbers. Ids are random below 2^48 (etcd accepts any
 * non-zero id and refuses a duplicate, in which case we draw again).
 */
import { randomInt } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import {
  EtcdLeaseInvalidError,
  type IDuplexStream,
  type ILeaseKeepAliveRequest,
  type ILeaseKeepAliveResponse,
  type LeaseClient,
} from 'etcd3';
import type pino from 'pino';
import { LeaseLostError, StoreUnavailableError } from './errors.js';
import { translateError } from './etcd-codec.js';
import { isEtcdUnavailable, KEEPALIVE_RETRY_MS, LEASE_GRANT_TRIES } from './retry.js';
import type { Lease } from './store.js';

export async function grantEtcdLease(client: LeaseClient, ttlSeconds: number, log: pino.Logger): Promise<EtcdLease> {
  let lastError: unknown;
  for (let attempt = 0; attempt < LEASE_GRANT_TRIES; attempt++) {
    const id = randomInt(1, 2 ** 48);
    const sentAt = performance.now();
    try {
      const res = await client.leaseGrant({ ID: id, TTL: ttlSeconds });
      if (res.error) throw new Error(res.error);
      const lease = new EtcdLease(client, id, ttlSeconds, log.child({ lease: id }), sentAt);
      lease.start();
      return lease;
    } catch (err) {
      lastError = err;
      if (isEtcdUnavailable(err)) break;
    }
  }
  throw translateError(lastError, 'lease grant');
}

export class EtcdLease implements Lease {
  readonly lost: Promise<Error>;
  private resolveLost!: (err: Error) => void;
  private stopped = false;
  /**
   * Send times of keepalives not yet answered, oldest first: etcd answers them in
   * order, and an answer proves the lease alive from its request's send time on,
   * not from when we read it (after a SIGSTOP an old answer can sit in the socket).
   */
  private unanswered: number[] = [];
  private stream: IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private revoking: Promise<void> | undefined;
  private connecting = false;

  constructor(
    private readonly client: LeaseClient,
    readonly id: number,
    private readonly ttlSeconds: number,
    private readonly log: pino.Logger,
    /** The grant's send time: the first proof of life. */
    private renewed: number,
  ) {
    this.lost = new Promise<Error>((resolve) => (this.resolveLost = resolve));
  }

  /** Sends a keepalive every ttl/3 (as the Go client does) on one stream, reopened when it breaks. */
  start(): void {
    const every = Math.max(100, (this.ttlSeconds * 1000) / 3);
    this.timer = setInterval(() => this.tick(), every);
    this.tick();
  }

  /** See `Lease.renewedAt`. */
  get renewedAt(): number {
    return this.renewed;
  }

  revoke(): Promise<void> {
    this.revoking ??= this.doRevoke();
    return this.revoking;
  }

  /** The store is closing: stop keeping it alive; etcd expires it after the TTL. */
  release(): void {
    if (this.stopped) return;
    this.stop();
    this.resolveLost(new LeaseLostError(this.id, { cause: new StoreUnavailableError('store closed') }));
  }

  private async doRevoke(): Promise<void> {
    this.stop();
    try {
      await this.client.leaseRevoke({ ID: this.id });
    } catch (err) {
      if (!(err instanceof EtcdLeaseInvalidError)) throw translateError(err, 'lease revoke');
    }
  }

  private tick(): void {
    if (this.stopped) return;
    if (performance.now() - this.renewedAt > this.ttlSeconds * 1000) {
      this.lose(new StoreUnavailableError('no keepalive answered within the lease TTL'));
      return;
    }
    if (this.stream) this.send(this.stream);
    else if (!this.connecting) void this.connect();
  }

  private async connect(): Promise<void> {
    this.connecting = true;
    try {
      const stream = await this.client.leaseKeepAlive();
      if (this.stopped) return stream.cancel();
      this.stream = stream;
      stream.on('data', (res) => this.onResponse(res));
      stream.on('error', (err) => this.onStreamError(stream, err));
      stream.on('end', () => this.onStreamError(stream, new Error('keepalive stream ended')));
      this.send(stream);
    } catch (err) {
      this.log.debug({ err }, 'lease keepalive connect failed');
      // Try again soon rather than at the next tick (ttl/3): see KEEPALIVE_RETRY_MS.
      setTimeout(() => this.tick(), KEEPALIVE_RETRY_MS).unref();
    } finally {
      this.connecting = false;
    }
  }

  private send(stream: IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>): void {
    this.unanswered.push(performance.now());
    stream.write({ ID: this.id });
  }

  private onResponse(res: ILeaseKeepAliveResponse): void {
    const sentAt = this.unanswered.shift();
    if (Number(res.TTL) <= 0) {
      this.lose(new EtcdLeaseInvalidError(res.ID));
      return;
    }
    if (sentAt !== undefined && sentAt > this.renewed) this.renewed = sentAt;
  }

  private onStreamError(stream: IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>, err: Error): void {
    if (this.stream !== stream) return;
    this.stream = undefined;
    this.unanswered = [];
    if (!this.stopped) this.log.debug({ err }, 'lease keepalive stream broke');
    setTimeout(() => this.tick(), KEEPALIVE_RETRY_MS).unref();
  }

  private lose(cause: Error): void {
    if (this.stopped) return;
    this.log.warn({ err: cause }, 'lease lost');
    this.stop();
    this.resolveLost(new LeaseLostError(this.id, { cause }));
  }

  private stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    const stream = this.stream;
    this.stream = undefined;
    stream?.cancel();
  }
}
