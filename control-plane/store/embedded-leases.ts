/**
 * Leases of the embedded store. The store is one process, so a lease is alive
 * exactly as long as the store is open: there is no keepalive to miss and no
 * TTL timer to run. When the process goes away its leases go with it; the next
 * open deletes every key that still carries one (see `sweepLeasedKeys`).
 */
import { LeaseLostError, StoreUnavailableError } from './errors.js';
import type { Lease } from './store.js';

export class LeaseTable {
  private readonly keys = new Map<number, Set<string>>();
  private readonly handles = new Map<number, EmbeddedLease>();
  // Time-based ids keep ids of a new run apart from the (swept) ids of the previous one.
  private nextId = Date.now() * 1000;

  grant(revoke: (id: number) => Promise<void>): Lease {
    const id = ++this.nextId;
    const lease = new EmbeddedLease(id, revoke);
    this.keys.set(id, new Set());
    this.handles.set(id, lease);
    return lease;
  }

  has(id: number): boolean {
    return this.keys.has(id);
  }

  /** Keeps the key index in step with writes (from/to are lease ids, 0 = none). */
  move(key: string, from: number, to: number): void {
    this.keys.get(from)?.delete(key);
    this.keys.get(to)?.add(key);
  }

  keysOf(id: number): string[] {
    return [...(this.keys.get(id) ?? [])];
  }

  forget(id: number): void {
    this.keys.delete(id);
    this.handles.delete(id);
  }

  /** The store is closing: every lease is lost with it. */
  loseAll(): void {
    for (const lease of this.handles.values()) lease.lose();
    this.handles.clear();
    this.keys.clear();
  }
}

class EmbeddedLease implements Lease {
  readonly lost: Promise<Error>;
  private resolveLost!: (err: Error) => void;
  private revoking: Promise<void> | undefined;

  constructor(
    readonly id: number,
    private readonly doRevoke: (id: number) => Promise<void>,
  ) {
    this.lost = new Promise<Error>((resolve) => (this.resolveLost = resolve));
  }

  revoke(): Promise<void> {
    this.revoking ??= this.doRevoke(this.id);
    return this.revoking;
  }

  lose(): void {
    this.resolveLost(new LeaseLostError(this.id, { cause: new StoreUnavailableError('store closed') }));
  }
}
