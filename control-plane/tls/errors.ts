/** Errors of the tls area. Match with the `isX` guards (they walk the `cause` chain), never on message text. */
import { NamedError, hasCause } from '../../proto/cause.js';

/** The cluster CA or this peer's certificate could not be loaded, created or written. */
export class AutoTlsError extends NamedError {}

export const isAutoTlsError = (err: unknown): boolean => hasCause(err, AutoTlsError);
