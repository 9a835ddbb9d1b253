/** Errors of the log store. Match with the `isX` guards (they walk the `cause` chain), never on message text. */
import { NamedError, findCause } from '../../proto/cause.js';

export class LogError extends NamedError {}

/** A chunk arrived past the end of what we hold: the sender must resume from `expected`. */
export class LogGapError extends LogError {
  constructor(
    readonly expected: number,
    readonly got: number,
  ) {
    super(`log gap: expected record ${expected}, got ${got}`);
  }
}

/** Records could not be written (a full disk): they were dropped, the sender must send them again. */
export class LogWriteError extends LogError {
  constructor(
    readonly expected: number,
    readonly held: number,
    options?: { cause?: unknown },
  ) {
    super(`could not write log records ${held} to ${expected - 1}`, options);
  }
}

/**
 * True when `err` or its cause is a LogGapError. It narrows `err` itself, which
 * is exact for its caller (what LogFile.append threw, unwrapped); read a
 * wrapped gap's fields from `findCause(err, LogGapError)`.
 */
export const isLogWriteError = (err: unknown): boolean => findCause(err, LogWriteError) !== undefined;

export const isLogGap = (err: unknown): err is LogGapError => findCause(err, LogGapError) !== undefined;
