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

/** Where enrolments are kept (every peer reads the same). */
export interface CredentialStore {
  /** The stored hash of `name`'s credential and its labels, undefined when it has none; rejects when the store cannot answer. */
  lookup(name: string): Promise<{ hash: string; labels: Record<string, string> } | undefined>;
  /** Stores `hash` unless `name` already has a credential or `with_`'s compares fail; false then. */
  enrol(name: string, hash: string, with_?: EnrolWith): Promise<boolean>;
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
  | { kind: 'credential'; hash: string; labels: Record<string, string> }
  | { kind: 'enrol' }
  | { kind: 'refused'; reason: string; presented: 'credential' | 'join token' };

/** A new enrolment: the credential to hand out once, its hash, and the labels it carries. */
export interface Enrolled {
  credential: Secret;
  hash: string;
  labels: Record<string, string>;
}

export const hashCredential = (credential: string): string => sha256(credential).toString('hex');

export class AgentAuth {
  private readonly joinTokenHash: Buffer;

  constructor(
    joinToken: Secret,
    private readonly store: CredentialStore,
    private readonly joins: JoinTokens,
  ) {
    this.joinTokenHash = sha256(joinToken.reveal());
  }

  /**
   * Decides on a Hello's secrets. A credential, when presented, is all that
   * counts: it must match the stored hash (a revoked agent cannot fall back
   * to a join token). Otherwise a join token (the static one, or a valid one
   * of role agent) enrols a name that has no credential yet, and nothing else.
   */
  async check(name: string, joinToken: string, credential: string): Promise<Admission> {
    if (credential) {
      const stored = await this.store.lookup(name);
      const hash = hashCredential(credential);
      if (stored !== undefined && sameHex(hash, stored.hash)) return { kind: 'credential', hash, labels: stored.labels };
      return { kind: 'refused', presented: 'credential', reason: `credential refused for agent ${name} (unknown or revoked)` };
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
    const credential = CREDENTIAL_PREFIX + randomBytes(32).toString('base64url');
    const hash = hashCredential(credential);
    const done = (labels: Record<string, string>): Enrolled => ({ credential: new Secret(credential), hash, labels });
    if (this.isStatic(joinToken)) return (await this.store.enrol(name, hash)) ? done({}) : { refused: alreadyEnrolled(name) };
    for (let i = 0; i < ENROL_TRIES; i++) {
      const grant = await this.joins.join(joinToken);
      if ('refused' in grant) return grant;
      if (await this.store.enrol(name, hash, { labels: grant.labels, compare: grant.compare, success: grant.consume }))
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
