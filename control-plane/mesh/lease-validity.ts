/**
 * Whether this process can still prove that its lease is alive at the store.
 *
 * etcd counts a lease's TTL from when it receives a keepalive, so a lease
 * whose newest confirmed keepalive was *sent* at `renewedAt` lives at least
 * until `renewedAt + ttl`. Past that (less a margin for clock-rate drift
 * between us and etcd) the lease may be gone and another peer may lead: a
 * process that was paused (SIGSTOP, a long GC, a frozen VM) must not act on
 * what it believed before the pause. The check is local and synchronous on
 * purpose: it needs no round trip, so it holds even while the network is
 * still waking up.
 */
import { performance } from 'node:perf_hooks';
import type { Lease } from '../store/store.js';

/** While invalid, how often to look for the validity coming back. */
const RECHECK_MS = 100;

export class LeaseValidity {
  private lost = false;
  private timer: NodeJS.Timeout | undefined;
  private lastReported = true;
  private stopped = true;

  constructor(
    private readonly lease: Lease,
    private readonly ttlMs: number,
    private readonly marginMs: number,
    /** Told when `valid()` flips while watching. */
    private readonly onFlip: (valid: boolean) => void,
  ) {
    void lease.lost.then(() => {
      this.lost = true;
      this.check();
    });
  }

  /**
   * True while the lease is surely alive. Leases without `renewedAt` (the
   * embedded store) live exactly as long as the process, so they are valid
   * until lost.
   */
  valid(): boolean {
    if (this.lost) return false;
    const renewedAt = this.lease.renewedAt;
    return renewedAt === undefined || performance.now() < this.deadline(renewedAt);
  }

  /** Starts reporting flips of `valid()` (a timer at each deadline); idempotent. */
  watch(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.lastReported = this.valid();
    this.arm();
  }

  /** Stops the timer; idempotent. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private deadline(renewedAt: number): number {
    return renewedAt + this.ttlMs - this.marginMs;
  }

  private arm(): void {
    clearTimeout(this.timer);
    const renewedAt = this.lease.renewedAt;
    if (this.stopped || this.lost || renewedAt === undefined) return;
    const wait = this.valid() ? this.deadline(renewedAt) - performance.now() + 1 : RECHECK_MS;
    this.timer = setTimeout(() => this.check(), Math.max(1, wait));
    this.timer.unref();
  }

  private check(): void {
    if (this.stopped) return;
    const valid = this.valid();
    if (valid !== this.lastReported) {
      this.lastReported = valid;
      this.onFlip(valid);
    }
    this.arm();
  }
}
