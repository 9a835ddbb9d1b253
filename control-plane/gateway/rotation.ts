/**
 * Rotating an agent's credential over its stream, without downtime.
 *
 * 1. `begin`: a new credential is made and its hash stored as the record's
 *    `next` (both hashes are accepted from then on), and the session sends it
 *    to the agent in a Rotate.
 * 2. The agent saves it (atomically replacing its credential file) and
 *    answers CredentialSaved with its sha256.
 * 3. `complete`: `next` becomes the hash. The old hash is no longer accepted;
 *    every peer hears of that through the watch, as of a revocation.
 *
 * A crash anywhere leaves a credential that works: before the agent saved
 * the new one, the old one is still the hash; after, the new one is still
 * `next`, and presenting it completes the rotation (see AgentSession.admit).
 * A rotation the agent never confirms is replaced by a new one after
 * `UNCONFIRMED_RETRY_MS`.
 *
 * When: at two thirds of a credential's lifetime (`--agent-credential-ttl`),
 * for one enrolled before credentials expired, and when an operator asks
 * (`runmesh agents rotate`, which marks the record).
 */
import { hashCredential, newCredential, type AgentCredentialRecord, type CredentialStore } from './auth.js';

/** How long a rotation handed out may stay unconfirmed before a new one replaces it. */
export const UNCONFIRMED_RETRY_MS = 60_000;

/** How often connected agents are checked for a rotation due: a twentieth of the lifetime, within 100 ms and a minute. */
export const rotationCheckMs = (ttlMs: number): number => Math.min(60_000, Math.max(100, Math.floor(ttlMs / 20)));

/** The share of its lifetime after which a credential is rotated. */
const ROTATE_AT = 2 / 3;

/** A rotation handed out: the credential to send (once) and its hash. */
export interface Rotation {
  credential: string;
  hash: string;
  expiresAt: Date;
}

export class CredentialRotation {
  constructor(
    private readonly store: CredentialStore,
    /** How long a credential is accepted after it is issued. */
    readonly ttlMs: number,
  ) {}

  /** When a credential issued now expires. */
  expiry(now = new Date()): Date {
    return new Date(now.getTime() + this.ttlMs);
  }

  /** True when `name` should be given a new credential now, as far as this peer has heard. */
  due(name: string, now = new Date()): boolean {
    const r = this.store.cached(name);
    return r !== undefined && rotationDue(r, now);
  }

  /**
   * True when `presented` is `name`'s pending hash: the agent confirmed it,
   * but the write that made it the only one did not happen (it is retried).
   */
  confirmedButPending(name: string, presented: string): boolean {
    return this.store.cached(name)?.next?.hash === presented;
  }

  /**
   * Makes a new credential for `name` and stores its hash as the pending one,
   * provided the agent still holds `presented` (the hash its session
   * presented). Undefined when it does not (revoked, or rotated meanwhile).
   */
  async begin(name: string, presented: string): Promise<Rotation | undefined> {
    const credential = newCredential();
    const hash = hashCredential(credential);
    const now = new Date();
    const expiresAt = this.expiry(now);
    const written = await this.store.update(name, (r) => {
      if (r.hash !== presented && r.next?.hash !== presented) return undefined;
      const { rotateRequestedAt: _asked, ...rest } = r;
      return { ...rest, next: { hash, expiresAt: expiresAt.toISOString(), sentAt: now.toISOString() } };
    });
    return written ? { credential, hash, expiresAt } : undefined;
  }

  /** Makes the pending hash `hash` the agent's only one. False when it is not pending (replaced, revoked, or done already). */
  async complete(name: string, hash: string): Promise<boolean> {
    const written = await this.store.update(name, (r) => {
      if (r.next?.hash !== hash) return undefined;
      const { next, ...rest } = r;
      return { ...rest, hash, createdAt: new Date().toISOString(), expiresAt: next.expiresAt };
    });
    return written !== undefined;
  }

  /** Marks `name` for rotation (`runmesh agents rotate`). False when it has no credential. */
  async request(name: string): Promise<boolean> {
    const written = await this.store.update(name, (r) => ({ ...r, rotateRequestedAt: new Date().toISOString() }));
    return written !== undefined;
  }
}

/** True when the agent with this record should be given a new credential now. */
export function rotationDue(r: AgentCredentialRecord, now: Date): boolean {
  if (r.next && now.getTime() - Date.parse(r.next.sentAt) < UNCONFIRMED_RETRY_MS) return false;
  if (r.rotateRequestedAt !== undefined || r.expiresAt === '') return true;
  const issued = Date.parse(r.createdAt);
  const expires = Date.parse(r.expiresAt);
  if (!Number.isFinite(issued) || !Number.isFinite(expires)) return true;
  return now.getTime() >= issued + (expires - issued) * ROTATE_AT;
}
