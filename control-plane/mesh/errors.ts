/** Errors of the mesh area. Match with the `isX` guards (they walk the `cause` chain), never on message text. */
import type { status as Status } from '@grpc/grpc-js';
import { NamedError, hasCause } from '../../proto/cause.js';

export class MeshError extends NamedError {}

/** The membership, election or directory was closed while the call was under way. */
export class MeshClosedError extends MeshError {}

/** A peer-to-peer call failed: the peer is down, slow, or answered with an error status. */
export class PeerCallError extends MeshError {
  constructor(
    readonly address: string,
    readonly method: string,
    /** The gRPC status code of the failure. */
    readonly code: Status,
    options?: { cause?: unknown },
  ) {
    super(`${method} to peer ${address} failed (code ${code})`, options);
  }
}

/** A stored record could not be parsed; someone wrote a key they should not have. */
export class BadRecordError extends MeshError {
  constructor(
    readonly key: string,
    options?: { cause?: unknown },
  ) {
    super(`unreadable record at ${key}`, options);
  }
}

export const isMeshClosed = (err: unknown): boolean => hasCause(err, MeshClosedError);

/** An attempt's log is held only by peers that are not live, or none of them answered (UNAVAILABLE; retry). */
export class LogUnreachableError extends MeshError {}

/**
 * A CopyLog request this peer cannot serve: the source is not another live
 * peer, or holds fewer records than asked (FAILED_PRECONDITION). The message
 * starts with the request field at fault.
 */
export class CopySourceError extends MeshError {}

export const isLogUnreachable = (err: unknown): boolean => hasCause(err, LogUnreachableError);
export const isCopySource = (err: unknown): boolean => hasCause(err, CopySourceError);
