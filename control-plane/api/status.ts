/** Maps errors to gRPC statuses in one place; unknown errors are logged and hidden. */
import { NamedError } from '../../proto/cause.js';
import { Metadata, status as Status, type sendUnaryData, type ServerUnaryCall, type ServiceError } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { isPermissionDenied, isUnauthenticated } from '../auth/errors.js';
import { RateLimitedError } from '../auth/rate-limit.js';
import { findCause } from '../../proto/cause.js';
import { isJobNotFound, isStaleWrite, isValidation } from '../jobs/errors.js';
import { jobIdTime } from '../jobs/ids.js';
import { isCopySource, isLogUnreachable } from '../mesh/errors.js';
import { isStoreUnavailable } from '../store/errors.js';
import { artifactErrorOf, type ArtifactErrorKind } from '../artifacts/errors.js';

export class ApiError extends NamedError {
  constructor(
    readonly code: Status,
    message: string,
  ) {
    super(message);
  }
}

export const invalid = (field: string, detail: string): ApiError => new ApiError(Status.INVALID_ARGUMENT, `${field}: ${detail}`);
export const notFound = (what: string): ApiError => new ApiError(Status.NOT_FOUND, `${what} not found`);

/** How long, and how many, ended jobs are kept (0: no limit). */
export interface Retention {
  readonly ageMs: number;
  readonly maxEnded: number;
}

/** NOT_FOUND for a job id; one that may have been deleted (old enough, or with a cap on ended jobs) says so. */
export function jobNotFound(id: string, retention: Retention, now = Date.now()): ApiError {
  const submitted = jobIdTime(id);
  const old = retention.ageMs > 0 && submitted !== undefined && submitted < now - retention.ageMs;
  const capped = retention.maxEnded > 0 && submitted !== undefined && submitted <= now;
  const rules = [
    ...(old ? [`${largestUnit(retention.ageMs)} after they end`] : []),
    ...(capped ? [`oldest first past ${retention.maxEnded.toLocaleString('en-US')} ended`] : []),
  ];
  const hint = rules.length > 0 ? ` (jobs are deleted ${rules.join(', or ')}; it may have been)` : '';
  return new ApiError(Status.NOT_FOUND, `job ${id} not found${hint}`);
}

const UNITS: Array<[string, number]> = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
];
/** `7d`, `36h`, `90m`, `1s`: the largest unit that divides it (a retention is typed as one). */
function largestUnit(ms: number): string {
  const [unit, size] = UNITS.find(([, size]) => ms % size === 0) ?? ['ms', 1];
  return `${ms / size}${unit}`;
}

const ARTIFACT_STATUS: Record<ArtifactErrorKind, Status> = {
  invalid: Status.INVALID_ARGUMENT,
  limit: Status.RESOURCE_EXHAUSTED,
  offset: Status.FAILED_PRECONDITION,
  checksum: Status.DATA_LOSS,
  incomplete: Status.FAILED_PRECONDITION,
  missing: Status.NOT_FOUND,
  disk: Status.RESOURCE_EXHAUSTED,
};

export function toServiceError(err: unknown, log: Logger): Partial<ServiceError> {
  if (err instanceof ApiError) return { code: err.code, details: err.message, metadata: new Metadata() };
  const limited = findCause(err, RateLimitedError);
  if (limited) {
    const metadata = new Metadata();
    metadata.set('retry-after-ms', String(limited.retryAfterMs));
    return { code: Status.RESOURCE_EXHAUSTED, details: limited.message, metadata };
  }
  if (isUnauthenticated(err)) return { code: Status.UNAUTHENTICATED, details: (err as Error).message };
  if (isPermissionDenied(err)) return { code: Status.PERMISSION_DENIED, details: (err as Error).message };
  if (isValidation(err)) return { code: Status.INVALID_ARGUMENT, details: (err as Error).message };
  if (isJobNotFound(err)) return { code: Status.NOT_FOUND, details: (err as Error).message };
  if (isStoreUnavailable(err)) return { code: Status.UNAVAILABLE, details: 'the store is unavailable; retry' };
  if (isStaleWrite(err)) return { code: Status.ABORTED, details: (err as Error).message };
  if (isLogUnreachable(err)) return { code: Status.UNAVAILABLE, details: (err as Error).message };
  if (isCopySource(err)) return { code: Status.FAILED_PRECONDITION, details: (err as Error).message };
  const artifact = artifactErrorOf(err);
  if (artifact) return { code: ARTIFACT_STATUS[artifact.kind], details: artifact.message };
  log.error({ err }, 'request failed');
  return { code: Status.INTERNAL, details: 'internal error (see the control plane log)' };
}

/** Wraps an async unary handler: result or mapped status, never an unhandled rejection. */
export function unary<Req, Res>(log: Logger, handler: (req: Req, call: ServerUnaryCall<Req, Res>) => Promise<Res>) {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
    handler(call.request, call).then(
      (res) => callback(null, res),
      (err: unknown) => callback(toServiceError(err, log)),
    );
  };
}

const JOB_ID = /^j_[0-9a-z]{10,40}$/;

/** Checks a job id's shape before it reaches the store (or a file path). */
export function checkJobId(id: string, field = 'id'): string {
  if (!id) throw invalid(field, 'missing');
  if (!JOB_ID.test(id)) throw notFound(`job ${id.slice(0, 64)}`);
  return id;
}
