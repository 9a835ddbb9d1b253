/**
 * Console sessions: signing in with an API token gives the browser an opaque
 * session id in an HttpOnly cookie. The session lives in the cluster's store,
 * so every peer behind a load balancer knows it, and signing out on one ends
 * it on all.
 *
 * What the store holds cannot be used without the cookie: the record is kept
 * under the sha256 of the id's secret part, and the API token in it is sealed
 * (AES-256-GCM) with a key derived from that secret, which only the browser
 * has. The session's CSRF token is derived from the secret too. The token is
 * checked by the gate again on every request, so revoking or expiring it ends
 * its sessions at once.
 *
 * An id is `<token group>.<secret>`: the group (a hash of the token's id)
 * keeps one token's sessions under one prefix, at most `perToken` of them
 * (past it, the least recently used goes), so one token holder signing in
 * over and over cannot crowd out anyone else's sessions. Expired sessions are
 * refused when presented and deleted by `sweep`.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { Secret } from '../secret.js';
import type { KeyValue, Store } from '../store/store.js';

export const SESSIONS_PREFIX = '/runmesh/console-sessions/';

export interface Session {
  readonly id: string;
  readonly token: Secret;
  readonly csrf: string;
  readonly createdAt: number;
  readonly lastSeen: number;
}

/** Session limits; defaults in DEFAULT_SESSION_LIMITS. */
export interface SessionLimits {
  /** A session not used for this long is gone (ms). */
  idleMs: number;
  /** A session older than this is gone however busy it is (ms). */
  maxAgeMs: number;
  /** Sessions one token holds at most; past it, its least recently used goes. */
  perToken: number;
  /** A session's last use is written back at most this often (ms): a page's every request is not a store write. */
  touchMs: number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = { idleMs: 8 * 3_600_000, maxAgeMs: 24 * 3_600_000, perToken: 50, touchMs: 60_000 };

interface StoredSession {
  v: 1;
  /** iv (12) | ciphertext | tag (16), base64: the API token. */
  token: string;
  createdAt: number;
  lastSeen: number;
}

const ID_FORMAT = /^([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{43})$/;
const SEAL_INFO = 'runmesh console session v1: token';
const CSRF_INFO = 'runmesh console session v1: csrf';

/** Where a session id's record is, and the secret that opens it; undefined for anything that is not an id. */
function locate(id: string): { key: string; secret: Buffer } | undefined {
  const m = ID_FORMAT.exec(id);
  if (!m) return undefined;
  const secret = Buffer.from(m[2]!, 'base64url');
  return { key: `${SESSIONS_PREFIX}${m[1]}/${createHash('sha256').update(secret).digest('hex')}`, secret };
}

const sealKey = (secret: Buffer): Buffer => Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), SEAL_INFO, 32));
const csrfOf = (secret: Buffer): string => createHmac('sha256', secret).update(CSRF_INFO).digest('base64url');

function seal(token: string, secret: Buffer, key: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', sealKey(secret), iv).setAAD(Buffer.from(key));
  const body = Buffer.concat([cipher.update(token, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64');
}

/** Throws when the record was not sealed with this secret for this key. */
function unseal(sealed: string, secret: Buffer, key: string): string {
  const raw = Buffer.from(sealed, 'base64');
  if (raw.length < 12 + 16) throw new Error('sealed token too short');
  const decipher = createDecipheriv('aes-256-gcm', sealKey(secret), raw.subarray(0, 12)).setAAD(Buffer.from(key));
  decipher.setAuthTag(raw.subarray(raw.length - 16));
  return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString('utf8');
}

/** The stored record, or undefined when it is not one (a record this version cannot read). */
function parse(value: string): StoredSession | undefined {
  try {
    const r = JSON.parse(value) as Partial<StoredSession>;
    if (r.v !== 1 || typeof r.token !== 'string' || typeof r.createdAt !== 'number' || typeof r.lastSeen !== 'number') return undefined;
    return r as StoredSession;
  } catch {
    return undefined;
  }
}

/** Sessions a peer remembers having read or made, to serve while the store cannot be read. */
const REMEMBERED = 10_000;
/** How long a remembered session's read waits for the store before it is served from memory. */
const STORE_WAIT_MS = 2_000;

interface Remembered {
  token: Secret;
  csrf: string;
  createdAt: number;
  lastSeen: number;
}

export class SessionStore {
  /**
   * The sessions this peer last found live in the store, most recently used
   * last. While the store cannot be read (an outage is when an operator most
   * needs the console) they are served from here until they expire; a session
   * this peer never saw is an error then, not a signed-out user.
   */
  private readonly remembered = new Map<string, Remembered>();

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
    private readonly limits: SessionLimits = DEFAULT_SESSION_LIMITS,
  ) {}

  /** A new session for `token`, whose gate principal is `principalId`; the token's least recently used sessions go past its cap. */
  async create(token: string, principalId: string, now = Date.now()): Promise<Session> {
    const group = createHash('sha256').update(principalId).digest('base64url').slice(0, 16);
    const secret = randomBytes(32);
    const id = `${group}.${secret.toString('base64url')}`;
    const { key } = locate(id)!;
    await this.makeRoom(`${SESSIONS_PREFIX}${group}/`, now);
    const record: StoredSession = { v: 1, token: seal(token, secret, key), createdAt: now, lastSeen: now };
    await this.store.put(key, JSON.stringify(record));
    const session = { id, token: new Secret(token), csrf: csrfOf(secret), createdAt: now, lastSeen: now };
    this.remember(session);
    return session;
  }

  /**
   * The live session `id` names (its last use recorded); undefined when there
   * is none or it expired. A store error throws: it is not a signed-out user.
   */
  async get(id: string, now = Date.now()): Promise<Session | undefined> {
    const at = locate(id);
    if (!at) return undefined;
    let kv: KeyValue | undefined;
    try {
      kv = await this.read(id, at.key);
    } catch (err) {
      return this.fromMemory(id, now, err);
    }
    if (!kv) return this.forget(id);
    const record = parse(kv.value);
    let token: string | undefined;
    try {
      token = record && unseal(record.token, at.secret, at.key);
    } catch {
      token = undefined;
    }
    if (!record || token === undefined) {
      this.log.warn({ key: at.key }, 'console session record unreadable: deleted, its user signs in again');
      this.forget(id);
      await this.dropIfUnchanged(kv);
      return undefined;
    }
    if (this.expired(record, now)) {
      this.forget(id);
      await this.dropIfUnchanged(kv);
      return undefined;
    }
    if (now - record.lastSeen >= this.limits.touchMs) {
      // Compared on its revision: a sign-out meanwhile is not undone by this write.
      // The session was read: a write that fails now costs an earlier idle end at worst, not this request.
      const touched: StoredSession = { ...record, lastSeen: now };
      await this.store
        .txn({
          compare: [{ key: kv.key, target: 'modRevision', op: '==', value: kv.modRevision }],
          success: [{ type: 'put', key: kv.key, value: JSON.stringify(touched) }],
        })
        .catch((err: unknown) => this.log.warn({ err }, 'console session use not recorded: the store refused the write'));
    }
    const session = { id, token: new Secret(token), csrf: csrfOf(at.secret), createdAt: record.createdAt, lastSeen: now };
    this.remember(session);
    return session;
  }

  /** Ends session `id` (on every peer); a no-op for an unknown one. */
  async delete(id: string): Promise<void> {
    this.forget(id);
    const at = locate(id);
    if (at) await this.store.delete(at.key);
  }

  /** Deletes every expired (or unreadable) session; returns how many. */
  async sweep(now = Date.now()): Promise<number> {
    let after: string | undefined;
    let dropped = 0;
    for (;;) {
      const page = await this.store.range(SESSIONS_PREFIX, { after, limit: 500 });
      for (const kv of page.kvs) {
        const record = parse(kv.value);
        if ((!record || this.expired(record, now)) && (await this.dropIfUnchanged(kv))) dropped++;
      }
      if (!page.more || page.kvs.length === 0) return dropped;
      after = page.kvs.at(-1)!.key;
    }
  }

  /**
   * The record, from the store; for a session this peer remembers, a store
   * that takes longer than STORE_WAIT_MS is taken as unreadable (etcd gone
   * would hold each request for the client's whole call timeout).
   */
  private async read(id: string, key: string): Promise<KeyValue | undefined> {
    const pending = this.store.get(key);
    if (!this.remembered.has(id)) return pending;
    let timer: NodeJS.Timeout | undefined;
    const slow = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the store did not answer within ${STORE_WAIT_MS} ms`)), STORE_WAIT_MS);
    });
    pending.catch(() => undefined); // its failure after the timeout is not an unhandled rejection
    try {
      return await Promise.race([pending, slow]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Session `id` as this peer last saw it, while the store cannot be read; rethrows `err` for one it never saw or that expired. */
  private fromMemory(id: string, now: number, err: unknown): Session {
    const known = this.remembered.get(id);
    if (!known || this.expired(known, now)) throw err;
    this.log.warn({ err }, "console session served from this peer's memory: the store cannot be read");
    known.lastSeen = now;
    return { id, ...known };
  }

  private remember(s: Session): void {
    this.remembered.delete(s.id);
    this.remembered.set(s.id, { token: s.token, csrf: s.csrf, createdAt: s.createdAt, lastSeen: s.lastSeen });
    if (this.remembered.size > REMEMBERED) this.remembered.delete(this.remembered.keys().next().value!);
  }

  private forget(id: string): undefined {
    this.remembered.delete(id);
    return undefined;
  }

  private expired(r: Pick<StoredSession, 'createdAt' | 'lastSeen'>, now: number): boolean {
    return now - r.lastSeen > this.limits.idleMs || now - r.createdAt > this.limits.maxAgeMs;
  }

  /** Keeps a token's sessions under its cap once one more is added: expired ones go first, then the least recently used. */
  private async makeRoom(prefix: string, now: number): Promise<void> {
    const { kvs } = await this.store.range(prefix);
    const live = (record: StoredSession | undefined): record is StoredSession => record !== undefined && !this.expired(record, now);
    const rank = (record: StoredSession | undefined): number => (live(record) ? record.lastSeen : -1);
    const ranked = kvs.map((kv) => ({ kv, record: parse(kv.value) })).sort((a, b) => rank(a.record) - rank(b.record));
    const stale = ranked.filter((r) => !live(r.record)).length;
    const excess = Math.max(stale, ranked.length + 1 - this.limits.perToken);
    for (const { kv } of ranked.slice(0, excess)) await this.dropIfUnchanged(kv);
  }

  /** Deletes `kv` unless it was written since it was read; true when it was deleted. */
  private async dropIfUnchanged(kv: KeyValue): Promise<boolean> {
    const res = await this.store.txn({
      compare: [{ key: kv.key, target: 'modRevision', op: '==', value: kv.modRevision }],
      success: [{ type: 'delete', key: kv.key }],
    });
    return res.succeeded;
  }
}

/** Constant-time comparison of a presented CSRF token with the session's. */
export function csrfMatches(s: Session, presented: string | undefined): boolean {
  if (!presented) return false;
  const a = Buffer.from(s.csrf);
  const b = Buffer.from(presented);
  return a.length === b.length && timingSafeEqual(a, b);
}
