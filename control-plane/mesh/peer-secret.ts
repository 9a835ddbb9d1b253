/**
 * The secret control-plane peers share to call each other's PeerService. It
 * lives in the store (`PEER_SECRET_KEY`), is created once by whichever peer
 * joins first (a create-if-absent transaction: one wins a race, everyone uses
 * the stored value) and is never returned by any API. What travels on a call
 * is not the secret but a token derived from it (`PeerSecret.token`), so a
 * captured call does not hand over the stored value itself.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { sameDigest, sha256, Unprintable } from '../secret.js';
import type { Store } from '../store/store.js';
import { BadRecordError } from './errors.js';
import { PEER_SECRET_KEY } from './keys.js';

/** The metadata key a peer's calls carry the token in. */
export const PEER_METADATA_KEY = 'x-runmesh-peer';

const SECRET_BYTES = 32;
/** Versions what the token is derived for, so another use of the secret never yields the same value. */
const TOKEN_LABEL = 'runmesh peer call v1';
const PLACEHOLDER = '[peer secret]';

export class PeerSecret extends Unprintable {
  readonly #token: string;
  readonly #digest: Buffer;
  readonly #secret: Buffer;

  private constructor(secret: Buffer) {
    super(PLACEHOLDER);
    this.#secret = secret;
    this.#token = 'rmp_' + createHmac('sha256', secret).update(TOKEN_LABEL).digest('base64url');
    this.#digest = sha256(this.#token);
  }

  /**
   * The cluster's secret: the stored one, or a new one stored if the key is
   * absent. A store error is thrown (never taken for "absent").
   */
  static async load(store: Store): Promise<PeerSecret> {
    const stored = await store.get(PEER_SECRET_KEY);
    if (stored) return PeerSecret.decode(stored.value);
    const fresh = randomBytes(SECRET_BYTES).toString('base64url');
    const created = await store.txn({
      compare: [{ key: PEER_SECRET_KEY, target: 'version', op: '==', value: 0 }],
      success: [{ type: 'put', key: PEER_SECRET_KEY, value: fresh }],
    });
    if (created.succeeded) return PeerSecret.decode(fresh);
    // Another peer created it between our read and our transaction: use theirs.
    const winner = await store.get(PEER_SECRET_KEY);
    if (!winner) throw new BadRecordError(PEER_SECRET_KEY, { cause: new Error('peer secret vanished after a lost create') });
    return PeerSecret.decode(winner.value);
  }

  /** For tests and tools that build one without a store. */
  static of(secret: Uint8Array): PeerSecret {
    if (secret.byteLength !== SECRET_BYTES) throw new RangeError(`a peer secret is ${SECRET_BYTES} bytes`);
    return new PeerSecret(Buffer.from(secret));
  }

  private static decode(value: string): PeerSecret {
    const bytes = Buffer.from(value, 'base64url');
    // The message names the key, never the value.
    if (bytes.byteLength !== SECRET_BYTES) throw new BadRecordError(PEER_SECRET_KEY);
    return new PeerSecret(bytes);
  }

  /** What a peer's call carries under `PEER_METADATA_KEY`. */
  token(): string {
    return this.#token;
  }

  /**
   * A key for another use of the cluster's secret (job tokens: 'runmesh job
   * token v1'), the same on every peer; the label keeps each use's key apart
   * from the others and from the peers' token.
   */
  derive(label: string): Buffer {
    return createHmac('sha256', this.#secret).update(label).digest();
  }

  /** True when `presented` is this cluster's token; constant time over equal-length digests. */
  matches(presented: string): boolean {
    return sameDigest(sha256(presented), this.#digest);
  }
}
