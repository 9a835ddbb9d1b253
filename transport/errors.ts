/** Errors of the transport area. Match with the `isX` guards (they walk the `cause` chain), never on message text. */
import { NamedError, hasCause } from '../proto/cause.js';

/** Anything that stops bytes from reaching the gRPC layer: bad address, bind or dial failure. */
export class TransportError extends NamedError {}

/** The text is not an address any transport understands; `text` is what the operator wrote. */
export class InvalidAddressError extends TransportError {
  constructor(
    readonly text: string,
    readonly detail: string,
  ) {
    super(`invalid transport address "${text}": ${detail}`);
  }
}

/** Something is already listening on a Unix socket we were asked to bind. */
export class AddressInUseError extends TransportError {
  constructor(readonly address: string) {
    super(`address in use: ${address} (another process is listening on it)`);
  }
}

/**
 * Fallback would move from an encrypted address to a plaintext network one.
 * Refused by default: a silent downgrade is how credentials leak (Jenkins JEP-222).
 */
export class DowngradeRefusedError extends TransportError {
  constructor(
    readonly from: string,
    readonly to: string,
    options?: { cause?: unknown },
  ) {
    super(`refusing to fall back from ${from} to plaintext ${to}; pass --allow-insecure-fallback to allow it`, options);
  }
}

/** No address of a fallback list answered; `attempts` holds each address with why it failed. */
export class NoReachableAddressError extends TransportError {
  constructor(readonly attempts: ReadonlyArray<{ address: string; error: Error }>) {
    super(`no address reachable: ${attempts.map((a) => `${a.address} (${a.error.message})`).join('; ')}`);
  }
}

/**
 * The server's certificate chain, or the CA file kept from an earlier contact,
 * does not hold the CA whose fingerprint was pinned. Never retried: a server
 * presenting another CA is either misconfigured or not ours.
 */
export class PinMismatchError extends TransportError {}

export const isTransportError = (err: unknown): boolean => hasCause(err, TransportError);
export const isInvalidAddress = (err: unknown): boolean => hasCause(err, InvalidAddressError);
export const isAddressInUse = (err: unknown): boolean => hasCause(err, AddressInUseError);
export const isDowngradeRefused = (err: unknown): boolean => hasCause(err, DowngradeRefusedError);
export const isNoReachableAddress = (err: unknown): boolean => hasCause(err, NoReachableAddressError);
export const isPinMismatch = (err: unknown): boolean => hasCause(err, PinMismatchError);
