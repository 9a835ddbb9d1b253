/** Errors raised by routing/. Guards walk the `cause` chain, so wrapped errors still match. */

/** A label selector that does not parse; `position` is the 0-based character index of the fault. */
export class SelectorParseError extends Error {
  override name = 'SelectorParseError';
  constructor(
    readonly position: number,
    readonly detail: string,
  ) {
    super(`${detail} at position ${position}`);
  }
}

/** A router or health option that makes no sense (a zero weight, a negative cool-down). */
export class RoutingOptionError extends Error {
  override name = 'RoutingOptionError';
  constructor(
    readonly option: string,
    readonly detail: string,
  ) {
    super(`${option}: ${detail}`);
  }
}

function walk<T extends Error>(err: unknown, type: abstract new (...args: never[]) => T): T | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 16; e = e.cause, depth++) {
    if (e instanceof type) return e;
  }
  return undefined;
}

export const isSelectorParseError = (err: unknown): boolean => walk(err, SelectorParseError) !== undefined;
export const isRoutingOptionError = (err: unknown): boolean => walk(err, RoutingOptionError) !== undefined;
