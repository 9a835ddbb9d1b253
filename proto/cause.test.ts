import { describe, expect, it } from 'vitest';
import { findCause, hasCause } from './cause.js';

class Inner extends Error {
  override name = 'Inner';
}
class Outer extends Error {
  override name = 'Outer';
}

describe('findCause', () => {
  it('finds the error itself or one down its cause chain, the nearest first', () => {
    const inner = new Inner('root');
    const wrapped = new Error('top', { cause: new Outer('middle', { cause: inner }) });
    expect(findCause(inner, Inner)).toBe(inner);
    expect(findCause(wrapped, Inner)).toBe(inner);
    expect(findCause(wrapped, Outer)?.message).toBe('middle');
    expect(findCause(wrapped, Error)).toBe(wrapped);
  });

  it('answers undefined for no match and for values that are not errors', () => {
    expect(findCause(new Error('x', { cause: 'a string' }), Inner)).toBeUndefined();
    expect(findCause('text', Inner)).toBeUndefined();
    expect(findCause(undefined, Error)).toBeUndefined();
    expect(hasCause({ cause: new Inner('not under an Error') }, Inner)).toBe(false);
  });

  it('stops on a cause chain that loops', () => {
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    (a as { cause?: unknown }).cause = b;
    expect(hasCause(a, Inner)).toBe(false);
  });
});
