/** Errors raised by agent/artifacts/. Guards walk the `cause` chain, so wrapped errors still match. */
import { NamedError, hasCause } from '../../proto/cause.js';

/**
 * The attempt's artifacts cannot be uploaded, for a reason another try
 * would not change (a file that cannot be read, too many files): its
 * message becomes the attempt's artifacts error.
 */
export class ArtifactsError extends NamedError {}

export const isArtifactsError = (err: unknown): boolean => hasCause(err, ArtifactsError);
