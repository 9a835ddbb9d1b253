/** Errors of the artifact store. Match with `artifactErrorOf` (it walks the `cause` chain), never on message text. */
import { NamedError, findCause } from '../../proto/cause.js';

/**
 * What went wrong, which the API turns into a status: `invalid` a bad path,
 * size or digest (INVALID_ARGUMENT); `limit` over a per-file, per-job or count
 * limit (RESOURCE_EXHAUSTED); `offset` data not from where the upload stands,
 * or an upload that is not begun (FAILED_PRECONDITION); `checksum` bytes that
 * do not match their sha256 (DATA_LOSS); `incomplete` a commit with files
 * not fully sent (FAILED_PRECONDITION); `missing` no such stored file
 * (NOT_FOUND); `disk` the blob directory's disk is full (RESOURCE_EXHAUSTED).
 */
export type ArtifactErrorKind = 'invalid' | 'limit' | 'offset' | 'checksum' | 'incomplete' | 'missing' | 'disk';

export class ArtifactError extends NamedError {
  constructor(
    readonly kind: ArtifactErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export const artifactErrorOf = (err: unknown): ArtifactError | undefined => findCause(err, ArtifactError);
