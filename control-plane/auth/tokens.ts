/**
 * API tokens. A token is `rmt_<id>_<secret>`: the prefix lets secret scanners
 * find a leaked one, the id (public) names it in `tokens ls` and `revoke`, and
 * the secret (32 random bytes) is never stored: the store keeps its SHA-256
 * under `/runmesh/tokens/<id>`. Every peer keeps a watched copy of the token
 * records, so checking a token is a map lookup and a constant-time compare,
 * and a revoked token stops working on every peer as soon as the delete is
 * seen (well under a second).
 *
 * A token of role `agent` is a join token: it is never a bearer for the API,
 * only presented in an agent's Hello to enrol it. Its record carries the
 * enrolments it has left (`usesLeft`) and the labels its agents are given;
 * each enrolment consumes one use in the same store transaction that creates
 * the agent's credential, and the last one deletes the record.
 */
import { randomBytes } from 'node:crypto';
import { chmod, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { parseRecord, WatchedPrefix } from '../mesh/watched-prefix.js';
import type { JoinGrant } from '../gateway/auth.js';
import type { Store } from '../store/store.js';
import { isTokenRole, type Principal, type Role } from './roles.js';
import { sameDigest, sha256 } from '../secret.js';

export const TOKEN_PREFIX = 'rmt_';
const TOKENS = '/runmesh/tokens/';
/** Set once, by the first peer to bootstrap the cluster's admin token. */
const BOOTSTRAP = '/runmesh/auth/bootstrap';
const ID_BYTES = 8;
const SECRET_BYTES = 32;
const TOKEN = /^rmt_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

/** A token as stored: no secret, only its hash. */
export interface TokenRecord {
  id: string;
  name: string;
  role: Role;
  /** Empty for admin: every tenant. */
  tenants: string[];
  createdAt: string;
  /** Empty: never expires. */
  expiresAt: string;
  /** SHA-256 of the secret, hex. */
  hash: string;
  /** Join tokens (role agent): enrolments left, at least 1 while the record exists; 0 for other roles. */
  usesLeft: number;
  /** Join tokens (role agent): labels given to every agent it enrols. */
  labels: Record<string, string>;
}

export interface NewToken {
  name: string;
  role: Role;
  tenants: readonly string[];
  /** 0: never expires. */
  ttlMs: number;
  /** Role agent only: enrolments it allows (default 1). */
  uses?: number;
  /** Role agent only: labels for the agents it enrols. */
  labels?: Readonly<Record<string, string>>;
}

export class TokenStore {
  private constructor(
    private readonly store: Store,
    private readonly records: WatchedPrefix<TokenRecord>,
  ) {}

  /** Reads the tokens and follows their changes; rejects if the first read fails. */
  static async open(store: Store, log: Logger): Promise<TokenStore> {
    const records = await WatchedPrefix.open<TokenRecord>({
      store,
      prefix: TOKENS,
      logger: log,
      parse: (kv) =>
        parseRecord<TokenRecord, 'id' | 'name' | 'role' | 'hash', TokenRecord>(
          kv,
          log,
          { what: 'token', required: ['id', 'name', 'role', 'hash'] },
          (v) => {
            if (!isTokenRole(v.role)) throw new Error(`unknown role ${String(v.role)}`);
            return normalise({ ...v, role: v.role });
          },
        ),
    });
    return new TokenStore(store, records);
  }

  /**
   * The join token `token` stands for, read from the store itself (the
   * watched copy may lag another peer's enrolment), or why it is refused:
   * unknown, revoked, used up, expired, or an API token of another role.
   * The reason names the token's id, never its secret. Rejects when the
   * store cannot answer.
   */
  async join(token: string, now = Date.now()): Promise<JoinGrant | { refused: string }> {
    const m = TOKEN.exec(token);
    if (!m) return { refused: 'join token refused' };
    const key = TOKENS + m[1]!;
    const kv = await this.store.get(key);
    const record = kv && parseJoin(kv.value);
    const gone = { refused: `join token ${m[1]} is unknown, revoked or used up` };
    if (!kv || !record || !sameHash(record.hash, m[2]!)) return gone;
    if (record.role !== 'agent') return { refused: `token ${m[1]} is a ${record.role} API token, not a join token (role agent)` };
    if (record.expiresAt && Date.parse(record.expiresAt) <= now) return { refused: `join token ${m[1]} expired at ${record.expiresAt}` };
    if (record.usesLeft < 1) return gone;
    const left = record.usesLeft - 1;
    return {
      labels: record.labels,
      compare: [{ key, target: 'modRevision', op: '==', value: kv.modRevision }],
      consume: [left > 0 ? { type: 'put', key, value: JSON.stringify({ ...record, usesLeft: left }) } : { type: 'delete', key }],
    };
  }

  /** Creates a token; the returned `token` is the only time its secret exists outside the caller. */
  async create(t: NewToken, now = new Date()): Promise<{ token: string; record: TokenRecord }> {
    if (!isTokenRole(t.role)) throw new Error(`no API token has role ${String(t.role)}: job tokens are minted per attempt`);
    const made = mint(t, now);
    const res = await this.store.txn({
      compare: [{ key: TOKENS + made.record.id, target: 'version', op: '==', value: 0 }],
      success: [{ type: 'put', key: TOKENS + made.record.id, value: JSON.stringify(made.record) }],
    });
    if (!res.succeeded) throw new Error(`token id ${made.record.id} already exists`);
    return made;
  }

  /**
   * The principal `token` stands for, or a reason it stands for nobody
   * (malformed, unknown, revoked, expired). The reason never repeats the token.
   */
  verify(token: string, now = Date.now()): Principal | { refused: string } {
    const m = TOKEN.exec(token);
    if (!m) return { refused: token.startsWith(TOKEN_PREFIX) ? 'malformed token' : 'not a runmesh token' };
    const record = this.records.get(TOKENS + m[1]!)?.value;
    if (!record || !sameHash(record.hash, m[2]!)) return { refused: `token ${m[1]} is unknown or revoked` };
    if (record.expiresAt && Date.parse(record.expiresAt) <= now)
      return { refused: `token ${m[1]} (${record.name}) expired at ${record.expiresAt}` };
    return { id: record.id, name: record.name, role: record.role, tenants: record.role === 'admin' ? 'all' : record.tenants };
  }

  list(): TokenRecord[] {
    return this.records.entriesInOrder().map((e) => e.value);
  }

  /** Deletes the token; false when there was none. */
  async revoke(id: string): Promise<boolean> {
    if (!/^[0-9a-f]{16}$/.test(id)) return false;
    const res = await this.store.txn({
      compare: [{ key: TOKENS + id, target: 'version', op: '>', value: 0 }],
      success: [{ type: 'delete', key: TOKENS + id }],
    });
    return res.succeeded;
  }

  /**
   * On a cluster's first start: creates its admin token and writes it to
   * `<dataDir>/admin.token` (mode 0600). Exactly one peer does, whichever
   * claims the bootstrap key first; returns the file's path then, else undefined.
   */
  async bootstrap(dataDir: string, now = new Date()): Promise<string | undefined> {
    const bootstrapped = await this.store.get(BOOTSTRAP);
    if (bootstrapped) return undefined;
    const { token, record } = mint({ name: 'bootstrap-admin', role: 'admin', tenants: [], ttlMs: 0 }, now);
    // The file is written (privately) before the token exists, and named only once it does:
    // a token nobody can read would lock the cluster out.
    const file = join(dataDir, 'admin.token');
    const pending = `${file}.${process.pid}.tmp`;
    await writeFile(pending, `${token}\n`, { mode: 0o600 });
    const claimed = await this.store
      .txn({
        compare: [{ key: BOOTSTRAP, target: 'version', op: '==', value: 0 }],
        success: [
          { type: 'put', key: BOOTSTRAP, value: JSON.stringify({ at: now.toISOString(), token: record.id }) },
          { type: 'put', key: TOKENS + record.id, value: JSON.stringify(record) },
        ],
      })
      .catch(async (err: unknown) => {
        await rm(pending, { force: true });
        throw err;
      });
    if (!claimed.succeeded) {
      await rm(pending, { force: true });
      return undefined;
    }
    await rename(pending, file);
    await chmod(file, 0o600); // rename keeps the mode; an old file of the same name does not matter
    return file;
  }

  close(): Promise<void> {
    return this.records.close();
  }
}

/** Fills the fields records written before them lack (an agent token from then has no uses: it enrols nobody). */
function normalise(v: Partial<TokenRecord> & Pick<TokenRecord, 'id' | 'name' | 'role' | 'hash'>): TokenRecord {
  return {
    ...v,
    tenants: v.tenants ?? [],
    createdAt: v.createdAt ?? '',
    expiresAt: v.expiresAt ?? '',
    usesLeft: typeof v.usesLeft === 'number' ? v.usesLeft : 0,
    labels: v.labels ?? {},
  };
}

function parseJoin(value: string): TokenRecord | undefined {
  try {
    const v = JSON.parse(value) as Partial<TokenRecord>;
    const role = String(v.role);
    if (typeof v.id !== 'string' || typeof v.name !== 'string' || typeof v.hash !== 'string' || !isTokenRole(role)) return undefined;
    return normalise({ ...v, id: v.id, name: v.name, hash: v.hash, role });
  } catch {
    return undefined;
  }
}

function sameHash(storedHex: string, secret: string): boolean {
  return sameDigest(Buffer.from(storedHex, 'hex'), sha256(secret));
}

/** A new token and its record (the secret only in the token). */
function mint(t: NewToken, now: Date): { token: string; record: TokenRecord } {
  const id = randomBytes(ID_BYTES).toString('hex');
  const secret = randomBytes(SECRET_BYTES).toString('base64url');
  const record: TokenRecord = {
    id,
    name: t.name,
    role: t.role,
    tenants: t.role === 'admin' ? [] : [...t.tenants],
    createdAt: now.toISOString(),
    expiresAt: t.ttlMs > 0 ? new Date(now.getTime() + t.ttlMs).toISOString() : '',
    hash: sha256(secret).toString('hex'),
    usesLeft: t.role === 'agent' ? (t.uses ?? 1) : 0,
    labels: t.role === 'agent' ? { ...t.labels } : {},
  };
  return { token: `${TOKEN_PREFIX}${id}_${secret}`, record };
}
