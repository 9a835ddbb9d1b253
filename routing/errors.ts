/** Errors raised by routing/. Guards walk the `cause` chain, so wrapped errors still match. */
import { NamedError, hasCause } from '../proto/cause.js';

/** A label selector that does not parse; `position` is the 0-based character index of the fault. */
export class SelectorParseError extends NamedError {
  constructor(
    readonly position: number,
    readonly detail: string,
  ) {
    super(`${detail} at position ${position}`);
  }
}

/** A router or health option that makes no sense (a zero weight, a negative cool-down). */
export class RoutingOptionError extends NamedError {
  constructor(
    readonly option: string,
    readonly detail: string,
  ) {
    super(`${option}: ${detail}`);
  }
}

export const isSelectorParseError = (err: unknown): boolean => hasCause(err, SelectorParseError);
export const isRoutingOptionError = (err: unknown): boolean => hasCause(err, RoutingOptionError);
