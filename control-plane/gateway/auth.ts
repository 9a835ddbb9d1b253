/**
 * Agent admission. An agent enrols once with the cluster's join token and is
 * given a credential of its own: `rma_` + 32 random bytes (base64url), of
 * which the store keeps only the sha256, shared by every peer. From then on
 * it presents that credential, and the join token no longer takes its name.
 * Secrets are compared as hashes, in constant time, and never logged.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { inspect } from 'node:util';

/** Recognisable by secret scanners. */
export const CREDENTIAL_PREFIX = 'rma_';

/** Where enrolments are kept (every peer reads the same). */
export interface CredentialStore {
  /** The stored hash of `name`'s credential, undefined when it has none; rejects when the store cannot answer. */
  hashOf(name: string): Promise<string | undefined>;
  /** Stores `hash` unless `name` already has a credential; false when another enrolment won. */
  enrol(name: string, hash: string): Promise<boolean>;
}

/** A value that must never be printed: logs and errors show a placeholder. */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return '[secret]';
  }
  toJSON(): string {
    return '[secret]';
  }
  [inspect.custom](): string {
    return '[secret]';
  }
}

/** What a Hello's secrets entitle it to. */
export type Admission =
  { kind: 'credential'; hash: string } | { kind: 'enrol' } | { kind: 'refused'; reason: string; presented: 'credential' | 'join token' };

export const hashCredential = (credential: string): string => createHash('sha256').update(credential).digest('hex');

export class AgentAuth {
  private readonly joinTokenHash: Buffer;

  constructor(
    joinToken: Secret,
    private readonly store: CredentialStore,
  ) {
    this.joinTokenHash = createHash('sha256').update(joinToken.reveal()).digest();
  }

  /**
   * Decides on a Hello's secrets. A credential, when presented, is all that
   * counts: it must match the stored hash (a revoked agent cannot fall back
   * to the join token). Otherwise the join token enrols a name that has no
   * credential yet, and nothing else.
   */
  async check(name: string, joinToken: string, credential: string): Promise<Admission> {
    if (credential) {
      const stored = await this.store.hashOf(name);
      const hash = hashCredential(credential);
      if (stored !== undefined && sameHex(hash, stored)) return { kind: 'credential', hash };
      return { kind: 'refused', presented: 'credential', reason: `credential refused for agent ${name} (unknown or revoked)` };
    }
    if (!joinToken || !timingSafeEqual(createHash('sha256').update(joinToken).digest(), this.joinTokenHash))
      return { kind: 'refused', presented: 'join token', reason: 'join token refused' };
    if ((await this.store.hashOf(name)) !== undefined) return { kind: 'refused', presented: 'join token', reason: alreadyEnrolled(name) };
    return { kind: 'enrol' };
  }

  /** Gives `name` a new credential; undefined when another enrolment of the name won the race. */
  async enrol(name: string): Promise<{ credential: Secret; hash: string } | undefined> {
    const credential = CREDENTIAL_PREFIX + randomBytes(32).toString('base64url');
    const hash = hashCredential(credential);
    return (await this.store.enrol(name, hash)) ? { credential: new Secret(credential), hash } : undefined;
  }
}

export const alreadyEnrolled = (name: string): string =>
  `agent ${name} is already enrolled, and the join token cannot take its name: present its credential ` +
  `(the file "credential" in its work dir), or, if the agent lost it, run \`runmesh agents revoke ${name}\` first`;

function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === 32 && x.length === y.length && timingSafeEqual(x, y);
}
