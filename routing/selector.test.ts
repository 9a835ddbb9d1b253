import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatSelector, isSelectorParseError, matches, parseSelector, SelectorParseError, type Requirement } from './index.js';
import { TEST_SEED } from './test-support.js';

const errorAt = (text: string): SelectorParseError => {
  try {
    parseSelector(text);
  } catch (err) {
    if (err instanceof SelectorParseError) return err;
    throw err;
  }
  throw new Error(`"${text}" parsed`);
};

describe('parseSelector', () => {
  it('accepts every requirement form, whitespace tolerant', () => {
    expect(parseSelector('')).toEqual([]);
    expect(parseSelector('   ')).toEqual([]);
    expect(parseSelector(' os = linux ,arch!=arm64, gpu , !spot, zone in ( a , b ),pool notin (x)')).toEqual([
      { key: 'os', op: '=', values: ['linux'] },
      { key: 'arch', op: '!=', values: ['arm64'] },
      { key: 'gpu', op: 'exists', values: [] },
      { key: 'spot', op: '!exists', values: [] },
      { key: 'zone', op: 'in', values: ['a', 'b'] },
      { key: 'pool', op: 'notin', values: ['x'] },
    ]);
    expect(parseSelector('example.com/team==ci-1')).toEqual([{ key: 'example.com/team', op: '=', values: ['ci-1'] }]);
  });

  it.each([
    ['os=', 3, 'expected label value'],
    ['os=linux,', 9, 'expected label key'],
    [',os=linux', 0, 'expected label key'],
    ['os=linux arch=x', 9, 'expected ","'],
    ['os in (a,', 9, 'expected label value'],
    ['os in a', 6, 'expected "("'],
    ['os in (a b)', 9, 'expected "," or ")"'],
    ['os in ()', 7, 'expected label value'],
    ['os ~ linux', 3, 'expected an operator'],
    ['os has (a)', 3, 'expected an operator'],
    ['-os=linux', 0, 'bad label key'],
    ['os=linux-', 3, 'bad label value'],
    ['os!linux', 2, 'expected "!="'],
    ['!', 1, 'expected label key'],
    [`os=${'v'.repeat(64)}`, 3, 'longer than 63'],
    [`${'k'.repeat(254)}`, 0, 'longer than 253'],
  ])('rejects %j at position %i', (text, position, detail) => {
    const err = errorAt(text);
    expect(err.position).toBe(position);
    expect(err.message).toContain(detail);
    expect(err.message).toContain(`at position ${position}`);
    expect(isSelectorParseError(new Error('wrapped', { cause: err }))).toBe(true);
  });

  it('accepts the longest legal key and value', () => {
    expect(() => parseSelector(`${'k'.repeat(253)}=${'v'.repeat(63)}`)).not.toThrow();
  });
});

const labelText = fc.stringMatching(/^[A-Za-z0-9]([A-Za-z0-9._/-]{0,10}[A-Za-z0-9])?$/);
const requirement: fc.Arbitrary<Requirement> = fc.oneof(
  fc.record({
    key: labelText,
    op: fc.constantFrom('=' as const, '!=' as const),
    values: fc.array(labelText, { minLength: 1, maxLength: 1 }),
  }),
  fc.record({
    key: labelText,
    op: fc.constantFrom('in' as const, 'notin' as const),
    values: fc.array(labelText, { minLength: 1, maxLength: 4 }),
  }),
  fc.record({ key: labelText, op: fc.constantFrom('exists' as const, '!exists' as const), values: fc.constant([] as string[]) }),
);

describe('selector properties', () => {
  it(`round-trips generated selectors through text, with random whitespace (seed ${TEST_SEED})`, () => {
    fc.assert(
      fc.property(fc.array(requirement, { maxLength: 6 }), fc.constantFrom('', ' ', '  \t'), (sel, ws) => {
        const text = formatSelector(sel);
        expect(parseSelector(text)).toEqual(sel);
        const spaced = text.replace(/([,=()])/g, `${ws}$1${ws}`).replace(/!\s*=/g, '!=');
        expect(parseSelector(`${ws}${spaced}${ws}`)).toEqual(sel);
      }),
      { seed: TEST_SEED, numRuns: 300 },
    );
  });

  it(`matches agrees with a direct reading of each operator (seed ${TEST_SEED})`, () => {
    const labels = fc.dictionary(fc.constantFrom('a', 'b', 'c'), fc.constantFrom('x', 'y', 'z'));
    const req = fc.record({
      key: fc.constantFrom('a', 'b', 'c'),
      op: fc.constantFrom('=' as const, '!=' as const, 'in' as const, 'notin' as const, 'exists' as const, '!exists' as const),
      values: fc.array(fc.constantFrom('x', 'y', 'z'), { minLength: 1, maxLength: 2 }),
    });
    fc.assert(
      fc.property(req, labels, (r, l) => {
        const v = Object.hasOwn(l, r.key) ? l[r.key] : undefined;
        const inValues = v !== undefined && r.values.includes(v);
        const expected = {
          '=': inValues,
          in: inValues,
          '!=': !inValues,
          notin: !inValues,
          exists: v !== undefined,
          '!exists': v === undefined,
        }[r.op];
        expect(matches([r], l)).toBe(expected);
      }),
      { seed: TEST_SEED, numRuns: 500 },
    );
  });
});
