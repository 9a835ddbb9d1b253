/** Errors of the log store. */

export class LogError extends Error {
  override name = 'LogError';
}

/** A chunk arrived past the end of what we hold: the sender must resume from `expected`. */
export class LogGapError extends LogError {
  override name = 'LogGapError';
  constructor(
    readonly expected: number,
    readonly got: number,
  ) {
    super(`log gap: expected record ${expected}, got ${got}`);
  }
}

export const isLogGap = (err: unknown): err is LogGapError => err instanceof LogGapError;
