/**
 * Agent admission. An agent enrols once with a join token and is given a
 * credential of its own: `rma_` + 32 random bytes (base64url), of which the
 * store keeps only the sha256, shared by every peer. From then on it presents
 * that credential, and no join token takes its name again.
 *
 * A join token is either the server's static `--join-token` (multi-use, never
 * expires) or an API token of role agent (`runmesh tokens create --role
 * agent`): uses-limited, expiring, revocable, stored hashed. Enrolling with
 * the latter consumes one use in the same store transaction that creates the
 * credential, and gives the agent the token's labels, for good.
 * Secrets are compared as hashes, in constant time, and never logged.
 */
import { randomBytes } from 'node:crypto';
import { sameDigest, Secret, sha256 } from '../secret.js';
import type { Compare, Op } from '../store/store.js';

/** Recognisable by secret scanners. */
export const CREDENTIAL_PREFIX = 'rma_';

/** What is stored per enrolled agent (mesh/agent-credentials.ts keeps it). */
export interface AgentCredentialRecord {
  /** sha256 of the credential, hex. */
  hash: string;
  /** ISO time the credential was issued (enrolment or rotation). */
  createdAt: string;
  /** ISO time after which the credential is refused; '' for one issued before credentials expired (rotated at its next connection). */
  expiresAt: string;
  /** From the join token it enrolled with; set over the agent's own labels. Empty for the static token. */
  labels: Record<string, string>;
  /** A rotation handed to the agent and not yet confirmed saved: its hash is accepted alongside `hash` until then. */
  next?: PendingRotation;
  /** Set by `runmesh agents rotate`: the peer holding the agent's stream (or the next to get it) rotates it. */
  rotateRequestedAt?: string;
}

export interface PendingRotation {
  hash: string;
  expiresAt: string;
  /** ISO time it was handed out; one left unconfirmed for long is replaced by a new one. */
  sentAt: string;
}

/** A stored record, with the revision a change to it must compare against. */
export interface StoredCredential {
  record: AgentCredentialRecord;
  modRevision: number;
}

/** Where enrolments are kept (every peer reads the same). */
export interface CredentialStore {
  /** `name`'s stored record, undefined when it has none; rejects when the store cannot answer. */
  lookup(name: string): Promise<StoredCredential | undefined>;
  /** Stores `hash`, expiring at `expiresAt`, unless `name` already has a credential or `with_`'s compares fail; false then. */
  enrol(name: string, hash: string, expiresAt: Date, with_?: EnrolWith): Promise<boolean>;
  /** `name`'s record as this peer last heard of it (may lag the store): for deciding when, never whether. */
  cached(name: string): AgentCredentialRecord | undefined;
  /** Replaces `name`'s record with `change(record)` in a compare-and-swap; undefined when it has none or `change` declined. */
  update(name: string, change: (r: AgentCredentialRecord) => AgentCredentialRecord | undefined): Promise<AgentCredentialRecord | undefined>;
}

/** What else an enrolment does, in the same transaction: consume a join token's use, give its labels. */
export interface EnrolWith {
  labels: Record<string, string>;
  compare: Compare[];
  success: Op[];
}

/** A join token found valid (auth/tokens.ts): the store operations that consume one use, and the labels it gives. */
export interface JoinGrant {
  labels: Record<string, string>;
  /** Holds only while the token's record is unchanged since it was read. */
  compare: Compare[];
  consume: Op[];
}

/** Join tokens made with `runmesh tokens create --role agent` (auth/tokens.ts). */
export interface JoinTokens {
  /** The token's grant read from the store, or why it is refused (never repeating the token); rejects when the store cannot answer. */
  join(token: string): Promise<JoinGrant | { refused: string }>;
}

/** Tries of an enrolment whose join token another enrolment changed meanwhile. */
const ENROL_TRIES = 5;

/** What a Hello's secrets entitle it to. */
export type Admission =
  /** `pending`: the credential is a rotation's not yet confirmed, which presenting it confirms. */
  | { kind: 'credential'; hash: string; labels: Record<string, string>; pending: boolean }
  | { kind: 'enrol' }
  | { kind: 'refused'; reason: string; presented: 'credential' | 'join token' };

/** A new enrolment: the credential to hand out once, its hash, and the labels it carries. */
export interface Enrolled {
  credential: Secret;
  hash: string;
  labels: Record<string, string>;
}

export const hashCredential = (credential: string): string => sha256(credential).toString('hex');

/** A new agent credential: the prefix and 32 random bytes, base64url. */
export const newCredential = (): string => CREDENTIAL_PREFIX + randomBytes(32).toString('base64url');

export class AgentAuth {
  private readonly joinTokenHash: Buffer;

  constructor(
    joinToken: Secret,
    private readonly store: CredentialStore,
    private readonly joins: JoinTokens,
    /** How long a credential lives from its issue (the rotation's). */
    private readonly expiry: (now: Date) => Date,
  ) {
    this.joinTokenHash = sha256(joinToken.reveal());
  }

  /**
   * Decides on a Hello's secrets. A credential, when presented, is all that
   * counts: it must match the stored hash, unexpired, or a rotation's pending
   * one (a revoked agent cannot fall back to a join token). Otherwise a join token (the static one, or a valid one
   * of role agent) enrols a name that has no credential yet, and nothing else.
   */
  async check(name: string, joinToken: string, credential: string): Promise<Admission> {
    if (credential) {
      const r = (await this.store.lookup(name))?.record;
      const hash = hashCredential(credential);
      const refused = (why: string): Admission => ({
        kind: 'refused',
        presented: 'credential',
        reason: `credential refused for agent ${name} (${why})`,
      });
      if (r === undefined) return refused('unknown or revoked');
      if (r.next && sameHex(hash, r.next.hash)) return { kind: 'credential', hash, labels: r.labels, pending: true };
      if (!sameHex(hash, r.hash)) return refused('unknown or revoked');
      if (r.expiresAt !== '' && Date.parse(r.expiresAt) <= Date.now())
        return refused(`expired at ${r.expiresAt}: enrol it again, after \`runmesh agents revoke ${name}\`, with a join token`);
      return { kind: 'credential', hash, labels: r.labels, pending: false };
    }
    if (!joinToken) return { kind: 'refused', presented: 'join token', reason: 'no join token or credential presented' };
    if (!this.isStatic(joinToken)) {
      const found = await this.joins.join(joinToken);
      if ('refused' in found) return { kind: 'refused', presented: 'join token', reason: found.refused };
    }
    if ((await this.store.lookup(name)) !== undefined) return { kind: 'refused', presented: 'join token', reason: alreadyEnrolled(name) };
    return { kind: 'enrol' };
  }

  /**
   * Gives `name` a new credential, consuming one use of `joinToken` unless it
   * is the static one, in one transaction. Refused when another enrolment took
   * the name, or the token is no longer valid (its last use went to another).
   */
  async enrol(name: string, joinToken: string): Promise<Enrolled | { refused: string }> {
    const credential = newCredential();
    const hash = hashCredential(credential);
    const done = (labels: Record<string, string>): Enrolled => ({ credential: new Secret(credential), hash, labels });
    const expiresAt = this.expiry(new Date());
    if (this.isStatic(joinToken)) return (await this.store.enrol(name, hash, expiresAt)) ? done({}) : { refused: alreadyEnrolled(name) };
    for (let i = 0; i < ENROL_TRIES; i++) {
      const grant = await this.joins.join(joinToken);
      if ('refused' in grant) return grant;
      if (await this.store.enrol(name, hash, expiresAt, { labels: grant.labels, compare: grant.compare, success: grant.consume }))
        return done(grant.labels);
      if ((await this.store.lookup(name)) !== undefined) return { refused: alreadyEnrolled(name) };
    }
    return { refused: 'the join token is in heavy use; try again' };
  }

  private isStatic(joinToken: string): boolean {
    return sameDigest(sha256(joinToken), this.joinTokenHash);
  }
}

export const alreadyEnrolled = (name: string): string =>
  `agent ${name} is already enrolled, and a join token cannot take its name: present its credential ` +
  `(the file "credential" in its work dir), or, if the agent lost it, run \`runmesh agents revoke ${name}\` first`;

function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  return x.length === 32 && sameDigest(x, Buffer.from(b, 'hex'));
}
