/**
 * Handling secrets, one way for the whole control plane: a type whose value
 * never prints (logs, errors, JSON and `util.inspect` show a placeholder),
 * SHA-256 digests (what the store keeps of tokens and credentials), and
 * constant-time comparison of digests.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { inspect } from 'node:util';

/** Something that holds a secret: printed, logged or serialised, it shows only `placeholder`. */
export abstract class Unprintable {
  constructor(private readonly placeholder: string) {}

  toString(): string {
    return this.placeholder;
  }

  toJSON(): string {
    return this.placeholder;
  }

  [inspect.custom](): string {
    return this.placeholder;
  }
}

/** A secret value (a join token, a credential being handed out); `reveal()` is the only way to it. */
export class Secret extends Unprintable {
  readonly #value: string;

  constructor(value: string) {
    super('[secret]');
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }
}

export const sha256 = (text: string): Buffer => createHash('sha256').update(text).digest();

/** True when two digests are equal: constant time, and false (never a throw) when their lengths differ. */
export function sameDigest(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
