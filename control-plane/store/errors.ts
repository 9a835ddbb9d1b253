/**
 * Errors of the store area. Match with the `isX` guards (they walk the `cause`
 * chain), never on message text. Which ones a retry may cure is retry.ts's call.
 */
import { NamedError, hasCause } from '../../proto/cause.js';

export class StoreError extends NamedError {}

/** A watch asked for a revision the store has compacted away: re-read, re-watch. */
export class CompactedError extends StoreError {
  constructor(
    readonly requested: number,
    readonly compactRevision: number,
  ) {
    super(`revision ${requested} is compacted (oldest kept is ${compactRevision})`);
  }
}

/** A lease expired, was revoked, or could not be kept alive. */
export class LeaseLostError extends StoreError {
  constructor(
    readonly leaseId: number,
    options?: { cause?: unknown },
  ) {
    super(`lease ${leaseId} lost`, options);
  }
}

/** The store is unreachable or closed (see retry.ts for who retries it). */
export class StoreUnavailableError extends StoreError {}

/**
 * etcd and this peer do not agree on TLS: a CA that did not sign etcd's
 * certificate, a client certificate etcd refuses or that has expired, TLS
 * towards a plaintext etcd. Not retryable: the files must change.
 */
export class EtcdTlsError extends StoreError {}

/** etcd refused this peer's user (a wrong password, no such user, auth turned off, or on without a user given). */
export class EtcdAuthError extends StoreError {}

export const isCompacted = (err: unknown): boolean => hasCause(err, CompactedError);
export const isStoreUnavailable = (err: unknown): boolean => hasCause(err, StoreUnavailableError);
export const isEtcdTlsError = (err: unknown): boolean => hasCause(err, EtcdTlsError);
export const isEtcdAuthError = (err: unknown): boolean => hasCause(err, EtcdAuthError);
