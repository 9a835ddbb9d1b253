/**
 * The secrets key ring: AES-256-GCM from node:crypto (OpenSSL's, so the AEAD
 * is the one every TLS connection of the process already trusts, with no
 * native module of our own to build or audit). One current key seals; the
 * previous keys, if any, only open what was sealed before a rotation.
 *
 * A sealed value carries the id of its key (the first 8 bytes of the key's
 * SHA-256, hex: names the key, reveals nothing of it), a random 96-bit nonce
 * per seal, and GCM's 128-bit tag; the caller's associated data (the secret's
 * tenant and name) is authenticated with it, so a ciphertext moved to another
 * name or tenant fails to open.
 *
 * A key is 32 bytes: a file of exactly 32 raw bytes, or 64 hex characters, or
 * base64 of 32 bytes (whitespace around it ignored). The keys are held as
 * KeyObjects: printed or logged, they show nothing.
 */
import { createCipheriv, createDecipheriv, createHash, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { BadSecretsKeyError } from './errors.js';

const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/** What the store keeps of a value. */
export interface Sealed {
  readonly kid: string;
  /** base64 */
  readonly nonce: string;
  /** base64, the tag excluded */
  readonly ct: string;
  /** base64 */
  readonly tag: string;
}

export class KeyRing {
  private readonly keys: Map<string, KeyObject>;
  /** The id of the key new values are sealed with. */
  readonly currentId: string;

  private constructor(current: Buffer, previous: readonly Buffer[]) {
    this.currentId = keyId(current);
    this.keys = new Map([[this.currentId, createSecretKey(current)]]);
    for (const k of previous) if (!this.keys.has(keyId(k))) this.keys.set(keyId(k), createSecretKey(k));
  }

  /** A ring from raw 32-byte keys: `current` seals, `previous` only open. */
  static of(current: Buffer, previous: readonly Buffer[] = []): KeyRing {
    for (const k of [current, ...previous]) if (k.length !== KEY_BYTES) throw new BadSecretsKeyError(`a secrets key is ${KEY_BYTES} bytes`);
    return new KeyRing(current, previous);
  }

  /** Ids of every key held, the current one first. */
  get ids(): string[] {
    return [...this.keys.keys()];
  }

  seal(plaintext: string, aad: Buffer): Sealed {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(this.currentId)!, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(aad);
    const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return { kid: this.currentId, nonce: nonce.toString('base64'), ct: ct.toString('base64'), tag: cipher.getAuthTag().toString('base64') };
  }

  /** The plaintext; throws with the reason (unknown key, or not authentic) when it cannot be opened. */
  open(s: Sealed, aad: Buffer): string {
    const key = this.keys.get(s.kid);
    if (!key) throw new Error(`sealed under key ${s.kid}, which this server does not hold (it has ${this.ids.join(', ')})`);
    const nonce = Buffer.from(s.nonce, 'base64');
    const tag = Buffer.from(s.tag, 'base64');
    if (nonce.length !== NONCE_BYTES || tag.length !== TAG_BYTES) throw new Error('malformed nonce or tag');
    const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad);
    decipher.setAuthTag(tag);
    try {
      return Buffer.concat([decipher.update(Buffer.from(s.ct, 'base64')), decipher.final()]).toString('utf8');
    } catch {
      throw new Error('not authentic: altered, or moved from another name or tenant');
    }
  }
}

/** A key's id: its SHA-256's first 8 bytes, hex. */
export const keyId = (key: Buffer): string => createHash('sha256').update(key).digest().subarray(0, 8).toString('hex');

/** 32 raw bytes, or 64 hex characters, or base64 of 32 bytes. `what` names the source in errors, never the content. */
export function parseKey(content: Buffer, what: string): Buffer {
  if (content.length === KEY_BYTES) return content;
  const text = content.toString('latin1').trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(text)) {
    const key = Buffer.from(text, 'base64');
    if (key.length === KEY_BYTES) return key;
  }
  throw new BadSecretsKeyError(`${what}: not a secrets key (32 raw bytes, 64 hex characters, or base64 of 32 bytes)`);
}

export async function readKeyFile(path: string): Promise<Buffer> {
  let content: Buffer;
  try {
    content = await readFile(path);
  } catch (err) {
    throw new BadSecretsKeyError(`secrets key file ${path} cannot be read`, { cause: err });
  }
  return parseKey(content, `secrets key file ${path}`);
}

/** A new random key, as the text a key file holds (base64 and a newline). */
export const newKeyText = (): string => `${randomBytes(KEY_BYTES).toString('base64')}\n`;

/** Where the key ring comes from (the server's flags and environment). */
export interface KeySources {
  /** `--secrets-key-file`; '' none. */
  readonly keyFile: string;
  /** `RUNMESH_SECRETS_KEY` (hex or base64); '' none. */
  readonly keyEnv: string;
  /** `--secrets-previous-key-file` (repeatable): keys that only open. */
  readonly previousKeyFiles: readonly string[];
}

/** The ring the sources give, or undefined when they name no current key (then the server keeps no secrets). */
export async function loadKeyRing(s: KeySources): Promise<KeyRing | undefined> {
  if (s.keyFile && s.keyEnv) throw new BadSecretsKeyError('give the secrets key once: --secrets-key-file or RUNMESH_SECRETS_KEY, not both');
  const current = s.keyFile ? await readKeyFile(s.keyFile) : s.keyEnv ? parseKey(Buffer.from(s.keyEnv), 'RUNMESH_SECRETS_KEY') : undefined;
  if (!current) {
    if (s.previousKeyFiles.length > 0) throw new BadSecretsKeyError('--secrets-previous-key-file needs a current key (--secrets-key-file)');
    return undefined;
  }
  return KeyRing.of(current, await Promise.all(s.previousKeyFiles.map(readKeyFile)));
}
