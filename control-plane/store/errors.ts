/** Errors of the store area. Match with the `isX` guards, never on message text. */

export class StoreError extends Error {
  override name = 'StoreError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A watch asked for a revision the store has compacted away: re-read, re-watch. */
export class CompactedError extends StoreError {
  override name = 'CompactedError';
  constructor(
    readonly requested: number,
    readonly compactRevision: number,
  ) {
    super(`revision ${requested} is compacted (oldest kept is ${compactRevision})`);
  }
}

/** A lease expired, was revoked, or could not be kept alive. */
export class LeaseLostError extends StoreError {
  override name = 'LeaseLostError';
  constructor(
    readonly leaseId: number,
    options?: { cause?: unknown },
  ) {
    super(`lease ${leaseId} lost`, options);
  }
}

/** The store is unreachable or closed. Retryable unless closed. */
export class StoreUnavailableError extends StoreError {
  override name = 'StoreUnavailableError';
}

function walk(err: unknown, test: (e: Error) => boolean): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (test(e)) return true;
  }
  return false;
}

export const isCompacted = (err: unknown): err is CompactedError => walk(err, (e) => e instanceof CompactedError);
export const isLeaseLost = (err: unknown): boolean => walk(err, (e) => e instanceof LeaseLostError);
export const isStoreUnavailable = (err: unknown): boolean => walk(err, (e) => e instanceof StoreUnavailableError);
