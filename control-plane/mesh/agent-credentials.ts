/**
 * Agents' enrolments, shared by every peer through the store: for each agent
 * that enrolled with the join token, the sha256 of the credential it was
 * given, at `/runmesh/agent-creds/<name>`, with the labels of the join token
 * it enrolled with (if any), which the agent is given on every connection.
 * The credential itself is never stored. Revoking an agent deletes its key;
 * every peer watches the prefix and hears of the delete, so it can end that
 * agent's stream.
 */
import type { Logger } from 'pino';
import type { EnrolWith } from '../gateway/auth.js';
import type { KeyValue, Store } from '../store/store.js';
import { AGENT_CREDS_PREFIX, agentCredKey } from './keys.js';
import { parseRecord, WatchedPrefix } from './watched-prefix.js';

/** What is stored per enrolled agent. */
export interface AgentCredentialRecord {
  /** sha256 of the credential, hex. */
  hash: string;
  /** ISO time of the enrolment. */
  createdAt: string;
  /** From the join token it enrolled with; set over the agent's own labels. Empty for the static token. */
  labels: Record<string, string>;
}

export class AgentCredentials {
  /** The last hash seen per agent name, to tell which enrolments a change removed. */
  private known = new Map<string, string>();
  private readonly revokedListeners = new Set<(name: string, hash: string) => void>();

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
  async lookup(name: string): Promise<{ hash: string; labels: Record<string, string> } | undefined> {
    const kv = await this.store.get(agentCredKey(name));
    if (!kv) return undefined;
    const record = parseCredential(kv, this.log);
    return { hash: record?.hash ?? '', labels: record?.labels ?? {} };
  }

  /**
   * Stores `hash` as `name`'s credential only if it has none (of two racing
   * enrolments one wins) and `with_`'s compares hold, applying its operations
   * in the same transaction. True if ours did.
   */
  async enrol(name: string, hash: string, with_: EnrolWith = { labels: {}, compare: [], success: [] }): Promise<boolean> {
    const key = agentCredKey(name);
    const record: AgentCredentialRecord = { hash, createdAt: new Date().toISOString(), labels: with_.labels };
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

  close(): Promise<void> {
    return this.watched.close();
  }

  private snapshot(): Map<string, string> {
    const m = new Map<string, string>();
    for (const e of this.watched.entriesInOrder()) m.set(e.kv.key.slice(AGENT_CREDS_PREFIX.length), e.value.hash);
    return m;
  }

  private changed(): void {
    const now = this.snapshot();
    const before = this.known;
    this.known = now;
    for (const [name, hash] of before) {
      if (now.get(name) === hash) continue;
      for (const listener of this.revokedListeners) listener(name, hash);
    }
  }
}

function parseCredential(kv: KeyValue, log: Logger): AgentCredentialRecord | undefined {
  return parseRecord<AgentCredentialRecord, 'hash', AgentCredentialRecord>(
    kv,
    log,
    { what: 'agent credential', required: ['hash'] },
    (v) => ({
      hash: v.hash,
      createdAt: typeof v.createdAt === 'string' ? v.createdAt : '',
      labels: v.labels && typeof v.labels === 'object' ? v.labels : {},
    }),
  );
}
