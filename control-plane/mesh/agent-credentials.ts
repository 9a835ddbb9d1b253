/**
 * Agents' enrolments, shared by every peer through the store: for each agent
 * that enrolled with the join token, the sha256 of the credential it was
 * given, at `/runmesh/agent-creds/<name>`, with the labels of the join token
 * it enrolled with (if any), which the agent is given on every connection.
 * The credential itself is never stored. Revoking an agent deletes its key;
 * every peer watches the prefix and hears of the delete, so it can end that
 * agent's stream.
 *
 * A rotation (gateway/rotation.ts) goes through the same record: `next`
 * holds the hash handed out and not yet confirmed saved by the agent (both
 * are accepted meanwhile), and completing it makes `next` the hash. A hash
 * that stops being accepted is reported to `onRevoked` listeners, exactly
 * like a revocation, so a stream still presenting it ends.
 */
import type { Logger } from 'pino';
import type { AgentCredentialRecord, EnrolWith, PendingRotation, StoredCredential } from '../gateway/auth.js';
import type { KeyValue, Store } from '../store/store.js';
import { AGENT_CREDS_PREFIX, agentCredKey } from './keys.js';
import { parseRecord, WatchedPrefix } from './watched-prefix.js';

/** Tries of a read-modify-write of one record that other writers keep changing. */
const UPDATE_TRIES = 5;

export class AgentCredentials {
  /** The hashes accepted per agent name when last seen, to tell which ones a change removed. */
  private known = new Map<string, string[]>();
  private readonly revokedListeners = new Set<(name: string, hash: string) => void>();
  private readonly rotateListeners = new Set<(name: string) => void>();

  private constructor(
    private readonly store: Store,
    private readonly watched: WatchedPrefix<AgentCredentialRecord>,
    private readonly log: Logger,
  ) {
    this.known = this.snapshot();
    watched.onChange(() => this.changed());
  }

  /** Reads and starts watching every agent's enrolment; rejects if the first read fails. */
  static async open(store: Store, logger: Logger): Promise<AgentCredentials> {
    const log = logger.child({ component: 'agent-credentials' });
    const watched = await WatchedPrefix.open({ store, prefix: AGENT_CREDS_PREFIX, parse: (kv) => parseCredential(kv, log), logger: log });
    return new AgentCredentials(store, watched, log);
  }

  /**
   * The stored hash of `name`'s credential, read from the store itself (not
   * the watched copy, which may lag a peer's enrolment); undefined when the
   * agent has none. An unreadable record answers '' (matches nothing, and
   * still blocks a new enrolment). A store failure rejects: never "absent".
   */
  async lookup(name: string): Promise<StoredCredential | undefined> {
    const kv = await this.store.get(agentCredKey(name));
    if (!kv) return undefined;
    const record = parseCredential(kv, this.log) ?? { hash: '', createdAt: '', expiresAt: '', labels: {} };
    return { record, modRevision: kv.modRevision };
  }

  /** The record as this peer last heard of it through the watch (may lag the store). */
  cached(name: string): AgentCredentialRecord | undefined {
    return this.watched.get(agentCredKey(name))?.value;
  }

  /**
   * Replaces `name`'s record with `change(record)` if nobody changed it since
   * it was read (read again and retried otherwise). `change` returns
   * undefined to leave it as it is. Resolves with the record written, or
   * undefined when the agent has none or `change` declined.
   */
  async update(
    name: string,
    change: (r: AgentCredentialRecord) => AgentCredentialRecord | undefined,
  ): Promise<AgentCredentialRecord | undefined> {
    const key = agentCredKey(name);
    for (let i = 0; i < UPDATE_TRIES; i++) {
      const found = await this.lookup(name);
      if (!found) return undefined;
      const next = change(structuredClone(found.record));
      if (!next) return undefined;
      const res = await this.store.txn({
        compare: [{ key, target: 'modRevision', op: '==', value: found.modRevision }],
        success: [{ type: 'put', key, value: JSON.stringify(next) }],
      });
      if (res.succeeded) return next;
    }
    throw new Error(`agent ${name}'s credential record kept changing: gave up after ${UPDATE_TRIES} tries`);
  }

  /**
   * Stores `hash` as `name`'s credential only if it has none (of two racing
   * enrolments one wins) and `with_`'s compares hold, applying its operations
   * in the same transaction. True if ours did.
   */
  async enrol(name: string, hash: string, expiresAt: Date, with_: EnrolWith = { labels: {}, compare: [], success: [] }): Promise<boolean> {
    const key = agentCredKey(name);
    const record: AgentCredentialRecord = {
      hash,
      createdAt: new Date().toISOString(),
      expiresAt: expiresAt.toISOString(),
      labels: with_.labels,
    };
    const res = await this.store.txn({
      compare: [{ key, target: 'createRevision', op: '==', value: 0 }, ...with_.compare],
      success: [{ type: 'put', key, value: JSON.stringify(record) }, ...with_.success],
    });
    if (res.succeeded) this.log.info({ agent_id: name }, 'agent enrolled');
    return res.succeeded;
  }

  /** Deletes `name`'s credential. False when it had none. */
  async revoke(name: string): Promise<boolean> {
    const deleted = await this.store.delete(agentCredKey(name));
    if (deleted) this.log.warn({ audit: true, agent_id: name }, 'agent credential revoked');
    return deleted;
  }

  /** Calls `listener` with the name and old hash of every credential deleted or replaced, on any peer. Returns the unsubscribe. */
  onRevoked(listener: (name: string, hash: string) => void): () => void {
    this.revokedListeners.add(listener);
    return () => void this.revokedListeners.delete(listener);
  }

  /** Calls `listener` with the name of every agent an operator asked to rotate, on any peer. Returns the unsubscribe. */
  onRotateRequested(listener: (name: string) => void): () => void {
    this.rotateListeners.add(listener);
    return () => void this.rotateListeners.delete(listener);
  }

  close(): Promise<void> {
    return this.watched.close();
  }

  private snapshot(): Map<string, string[]> {
    const m = new Map<string, string[]>();
    for (const e of this.watched.entriesInOrder()) m.set(e.kv.key.slice(AGENT_CREDS_PREFIX.length), acceptedHashes(e.value));
    return m;
  }

  private changed(): void {
    const now = this.snapshot();
    const before = this.known;
    this.known = now;
    for (const [name, hashes] of before) {
      const still = now.get(name) ?? [];
      for (const hash of hashes) {
        if (still.includes(hash)) continue;
        for (const listener of this.revokedListeners) listener(name, hash);
      }
    }
    for (const e of this.watched.entriesInOrder()) {
      if (e.value.rotateRequestedAt === undefined) continue;
      const name = e.kv.key.slice(AGENT_CREDS_PREFIX.length);
      for (const listener of this.rotateListeners) listener(name);
    }
  }
}

/** The hashes a record accepts: its own, and a rotation's not yet confirmed. */
export function acceptedHashes(r: AgentCredentialRecord): string[] {
  return r.next ? [r.hash, r.next.hash] : [r.hash];
}

function parseCredential(kv: KeyValue, log: Logger): AgentCredentialRecord | undefined {
  return parseRecord<AgentCredentialRecord, 'hash', AgentCredentialRecord>(
    kv,
    log,
    { what: 'agent credential', required: ['hash'] },
    (v) => ({
      hash: v.hash,
      createdAt: typeof v.createdAt === 'string' ? v.createdAt : '',
      expiresAt: typeof v.expiresAt === 'string' ? v.expiresAt : '',
      labels: v.labels && typeof v.labels === 'object' ? v.labels : {},
      ...(isPending(v.next) ? { next: v.next } : {}),
      ...(typeof v.rotateRequestedAt === 'string' ? { rotateRequestedAt: v.rotateRequestedAt } : {}),
    }),
  );
}

function isPending(v: unknown): v is PendingRotation {
  const p = v as Partial<PendingRotation> | undefined;
  return typeof p?.hash === 'string' && typeof p.expiresAt === 'string' && typeof p.sentAt === 'string';
}
