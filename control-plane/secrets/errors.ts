/** Errors of the secrets area. Match with the `isX` guards (they walk the `cause` chain), never on message text. */
import { hasCause, NamedError } from '../../proto/cause.js';

export class SecretsError extends NamedError {}

/** The server was started without a secrets key: nothing can be stored or resolved. */
export class NoSecretsKeyError extends SecretsError {
  constructor() {
    super('this server has no secrets key: start it with --secrets-key-file or RUNMESH_SECRETS_KEY');
  }
}

/** A key file or variable that does not hold a 256-bit key. The message never repeats its content. */
export class BadSecretsKeyError extends SecretsError {}

/** A secret a job references is not in its tenant (deleted since the job was submitted, or never there). */
export class SecretMissingError extends SecretsError {
  constructor(
    readonly tenant: string,
    readonly secret: string,
  ) {
    super(`secret ${secret} does not exist in tenant ${tenant}`);
  }
}

/**
 * A stored secret that cannot be opened: encrypted under a key this server
 * does not hold (rotated away too early, or a peer with another key), or
 * altered, or moved to another name or tenant (its name and tenant are
 * authenticated with it). Never read as "absent".
 */
export class SecretUnreadableError extends SecretsError {
  constructor(
    readonly tenant: string,
    readonly secret: string,
    detail: string,
    options?: ErrorOptions,
  ) {
    super(`secret ${secret} of tenant ${tenant} cannot be decrypted: ${detail}`, options);
  }
}

/** A tenant holds as many secrets as it may. */
export class TenantFullError extends SecretsError {
  constructor(
    readonly tenant: string,
    readonly limit: number,
  ) {
    super(`tenant ${tenant} holds ${limit} secrets, the most it may: delete one first`);
  }
}

export const isTenantFull = (err: unknown): boolean => hasCause(err, TenantFullError);
export const isNoSecretsKey = (err: unknown): boolean => hasCause(err, NoSecretsKeyError);
export const isSecretMissing = (err: unknown): boolean => hasCause(err, SecretMissingError);
export const isSecretUnreadable = (err: unknown): boolean => hasCause(err, SecretUnreadableError);
