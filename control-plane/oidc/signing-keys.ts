/**
 * The OIDC issuer's signing keys (ES256), shared by every peer through the
 * store under `/runmesh/oidc/keys/<kid>`, and rotated with an overlap:
 *
 * - a new key is stored `rotationMs - leadMs` after the newest one, and is
 *   published in the JWKS at once, but signs only once it is `leadMs` old, so
 *   relying parties that cache the JWKS have seen it before any token names it
 *   (on a cluster's first start the one key signs at once: nobody can have
 *   cached a JWKS without it);
 * - a key stays published until the key after it has been signing for
 *   longer than an ID token lives (plus clock skew), then it is deleted.
 *
 * Any peer may rotate or retire: a rotation is a transaction on
 * `/runmesh/oidc/rotation` (the newest kid), so of two peers racing one
 * stores a key; a retirement is a delete, harmless twice. The private key is
 * stored as a JWK in the clear, as the peer secret is: whoever reads the store
 * could sign ID tokens, as they could forge peer calls, so the store is locked
 * down (etcd's TLS and users; the embedded store's data dir, 0700).
 */
import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';
import type { Logger } from 'pino';
import { parseRecord, WatchedPrefix } from '../mesh/watched-prefix.js';
import type { Store } from '../store/store.js';

const KEYS = '/runmesh/oidc/keys/';
const ROTATION = '/runmesh/oidc/rotation';
export const ALG = 'ES256';
/** The longest an ID token lives. */
export const MAX_TOKEN_LIFETIME_MS = 10 * 60_000;
const CLOCK_SKEW_MS = 60_000;

interface KeyRecord {
  kid: string;
  /** ms since the epoch. */
  createdAt: number;
  publicJwk: JWK;
  privateJwk: JWK;
}

export interface KeyTimes {
  /** How often a new key is made. */
  rotationMs: number;
  /** How long a new key is published before it signs: min(1 h, rotationMs / 4). */
  leadMs: number;
}

export const keyTimes = (rotationMs: number): KeyTimes => ({ rotationMs, leadMs: Math.min(3_600_000, rotationMs / 4) });

export class SigningKeys {
  private readonly imported = new Map<string, Promise<CryptoKey>>();
  private timer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly store: Store,
    private readonly keys: WatchedPrefix<KeyRecord>,
    private readonly times: KeyTimes,
    private readonly log: Logger,
  ) {}

  /** Follows the stored keys, makes the first one if there is none, and checks for a rotation or retirement every `checkMs`. */
  static async open(store: Store, times: KeyTimes, log: Logger, checkMs = Math.min(30_000, times.leadMs / 2)): Promise<SigningKeys> {
    const keys = await WatchedPrefix.open<KeyRecord>({
      store,
      prefix: KEYS,
      logger: log,
      parse: (kv) =>
        parseRecord<KeyRecord, 'kid', KeyRecord>(kv, log, { what: 'oidc key', required: ['kid'] }, (v) => {
          if (typeof v.createdAt !== 'number' || !v.publicJwk || !v.privateJwk) throw new Error('incomplete key');
          return v as KeyRecord;
        }),
    });
    const k = new SigningKeys(store, keys, times, log);
    await k.tend();
    k.timer = setInterval(() => void k.tend().catch((err: unknown) => log.warn({ err }, 'oidc key rotation failed')), checkMs);
    k.timer.unref();
    return k;
  }

  private all(): KeyRecord[] {
    return this.keys.entriesInOrder().map((e) => e.value);
  }

  /** Rotates when the newest key is due, and retires keys whose every token has expired. */
  async tend(now = Date.now()): Promise<void> {
    const keys = this.all();
    const newest = keys.at(-1);
    if (!newest || newest.createdAt + this.times.rotationMs - this.times.leadMs <= now) await this.rotate(newest?.kid ?? '', now);
    for (const [i, k] of keys.entries()) {
      const next = keys[i + 1];
      if (next && next.createdAt + this.times.leadMs + MAX_TOKEN_LIFETIME_MS + CLOCK_SKEW_MS < now) {
        await this.store.delete(KEYS + k.kid);
        this.log.info({ kid: k.kid }, 'oidc signing key retired');
      }
    }
  }

  private async rotate(newestKid: string, now: number): Promise<void> {
    const { publicKey, privateKey } = await generateKeyPair(ALG, { extractable: true });
    // Sorts by time, so the watched copy's key order is age order.
    const kid = `${now.toString(36).padStart(9, '0')}${randomBytes(4).toString('hex')}`;
    const record: KeyRecord = {
      kid,
      createdAt: now,
      publicJwk: { ...(await exportJWK(publicKey)), kid, alg: ALG, use: 'sig' },
      privateJwk: await exportJWK(privateKey),
    };
    const res = await this.store.txn({
      compare: [
        newestKid
          ? { key: ROTATION, target: 'value', op: '==', value: newestKid }
          : { key: ROTATION, target: 'version', op: '==', value: 0 },
      ],
      success: [
        { type: 'put', key: ROTATION, value: kid },
        { type: 'put', key: KEYS + kid, value: JSON.stringify(record) },
      ],
    });
    if (res.succeeded) this.log.info({ kid }, 'oidc signing key made');
    // Ours or a racing peer's: either way a newer key than `newestKid` arrives through the watch.
    await this.arrival((k) => k.kid > newestKid);
  }

  /** Resolves once the watched copy holds a key `wanted` accepts (or after 5 s: the next check tries again). */
  private arrival(wanted: (k: KeyRecord) => boolean): Promise<void> {
    return new Promise((resolve) => {
      const check = (): void => {
        if (!this.all().some(wanted)) return;
        stop();
        clearTimeout(timer);
        resolve();
      };
      const stop = this.keys.onChange(check);
      const timer = setTimeout(() => {
        stop();
        resolve();
      }, 5_000);
      check();
    });
  }

  /** The public keys to publish (every key not yet retired). */
  jwks(): { keys: JWK[] } {
    return { keys: this.all().map((k) => k.publicJwk) };
  }

  /** The key to sign with now: the newest one published for `leadMs`, else (a fresh cluster) the oldest. */
  async signer(now = Date.now()): Promise<{ kid: string; key: CryptoKey }> {
    const keys = this.all();
    const ready = keys.filter((k) => k.createdAt + this.times.leadMs <= now).at(-1) ?? keys[0];
    if (!ready) throw new Error('no OIDC signing key yet');
    let key = this.imported.get(ready.kid);
    if (!key) this.imported.set(ready.kid, (key = importJWK(ready.privateJwk, ALG) as Promise<CryptoKey>));
    return { kid: ready.kid, key: await key };
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.keys.close();
  }
}
