/**
 * Walking an error's `cause` chain: the one helper behind every area's `isX`
 * guards (each area's errors.ts), so a wrapped error still matches. It lives
 * in proto/ because proto/ is the one folder every other folder may import.
 */

/**
 * How far down a chain is followed. Chains can loop (an error set as the cause
 * of its own cause), and a real one is a handful of layers deep.
 */
const MAX_DEPTH = 16;

/** `err` and the errors down its cause chain, nearest first (at most MAX_DEPTH of them). */
export function* causeChain(err: unknown): Generator<Error> {
  for (let e = err, depth = 0; e instanceof Error && depth < MAX_DEPTH; e = e.cause, depth++) yield e;
}

/** The first error in `err`'s cause chain (`err` itself included) that is a `type`; undefined if none is. */
export function findCause<T extends Error>(err: unknown, type: abstract new (...args: never[]) => T): T | undefined {
  for (const e of causeChain(err)) if (e instanceof type) return e;
  return undefined;
}

/** True when `err` or an error in its cause chain is a `type`. */
export function hasCause(err: unknown, type: abstract new (...args: never[]) => Error): boolean {
  return findCause(err, type) !== undefined;
}

/**
 * Base of runmesh's own errors: its `name` is its class's name (what logs and
 * `err.name` show), so no subclass has to repeat it.
 */
export class NamedError extends Error {
  constructor(message?: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}
