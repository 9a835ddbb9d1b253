/** Errors of the auth area; api/status.ts maps them to UNAUTHENTICATED and PERMISSION_DENIED. */
import { hasCause, NamedError } from '../../proto/cause.js';

/** No credential, or one that is unknown, expired or revoked. The message never repeats the credential. */
export class UnauthenticatedError extends NamedError {}

/** An authenticated caller without the role or tenant the call needs; the message names what is missing. */
export class PermissionDeniedError extends NamedError {}

export const isUnauthenticated = (err: unknown): boolean => hasCause(err, UnauthenticatedError);
export const isPermissionDenied = (err: unknown): boolean => hasCause(err, PermissionDeniedError);
