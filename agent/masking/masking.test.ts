/**
 * Masking, against an adversarial corpus and fast-check: values split at
 * every point and across records of both streams, multi-line values, the
 * encodings, overlapping and nested values; and the record contract (same
 * seqs, same count, deterministic for a resend).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { LogRecord, OutputStream } from '../executor/executor.js';
import { maskForms, maskText, matcherFor, RecordMasker, type Matcher } from './index.js';

/** Runs records through a fresh masker, from `from` on as a resend would (replaying from 0). */
function maskAll(m: Matcher, records: LogRecord[], from = 0): LogRecord[] {
  const masker = new RecordMasker(m);
  const out = records.flatMap((r) => masker.push(r)).concat(masker.end());
  return out.filter((r) => r.seq >= from);
}

/** Cuts `text` at `cuts` (byte offsets) into records of one stream. */
function cut(text: string | Buffer, cuts: number[], stream: OutputStream = 'stdout', seq0 = 0): LogRecord[] {
  const buf = Buffer.isBuffer(text) ? text : Buffer.from(text);
  const points = [...new Set(cuts.map((c) => Math.min(Math.max(0, c), buf.length)))].sort((a, b) => a - b);
  const bounds = [0, ...points.filter((p) => p > 0 && p < buf.length), buf.length];
  return bounds.slice(1).map((end, i) => ({ seq: seq0 + i, stream, data: buf.subarray(bounds[i], end) }));
}

const joined = (records: LogRecord[], stream: OutputStream = 'stdout'): string =>
  Buffer.concat(records.filter((r) => r.stream === stream).map((r) => r.data)).toString();

const SECRET = 'hunter2-Sup3r/s3cret+token=';

describe('forms', () => {
  it('covers the value, its lines, base64 in every alignment, percent and JSON forms', () => {
    const value = 'line-one-AAAA\nline/two+BBBB é';
    const m = matcherFor([value]);
    const b64 = (s: string): string => Buffer.from(s).toString('base64');
    const cases = [
      value,
      'line-one-AAAA',
      'line/two+BBBB é',
      b64(value),
      b64(value).replace(/=+$/, ''),
      Buffer.from(value).toString('base64url'),
      b64(`user:${value}`),
      b64(`ab${value}`),
      b64(`x${value}`),
      encodeURIComponent(value),
      encodeURIComponent(value).replace(/%20/g, '+'),
      encodeURIComponent(value).replace(/%[0-9A-F]{2}/g, (h) => h.toLowerCase()),
      JSON.stringify(value),
      JSON.stringify({ k: value }),
      JSON.stringify(value).replace('é', '\\u00e9'),
    ];
    for (const c of cases) {
      const masked = maskText(m, `before ${c} after`);
      // What is left of the form beside the mask: quotes, a key, the characters an alignment or a prefix decides.
      const left = masked
        .replace(/^before /, '')
        .replace(/ after$/, '')
        .replace('***', '');
      expect({ c, masked, has: masked.includes('***') }).toEqual({ c, masked, has: true });
      expect({ c, left: left.length <= 10 }).toEqual({ c, left: true });
    }
  });

  it('masks a value shorter than a line minimum, but not the short lines of a multi-line one', () => {
    expect(maskText(matcherFor(['ab']), 'cab')).toBe('c***');
    expect(maskText(matcherFor(['{\nkey-material-1\n}']), '{ x }')).toBe('{ x }');
  });

  it('has no forms for an empty value', () => {
    expect(maskForms(['']).length).toBe(0);
    expect(maskText(matcherFor([]), 'anything')).toBe('anything');
  });
});

describe('records', () => {
  it('masks a value split at every point of two records, keeping both records', () => {
    const m = matcherFor([SECRET]);
    const text = `say ${SECRET} done`;
    for (let i = 0; i <= text.length; i++) {
      const out = maskAll(m, cut(text, [i]));
      expect(out.map((r) => r.seq)).toEqual(cut(text, [i]).map((r) => r.seq));
      expect(joined(out)).toBe('say *** done');
    }
  });

  it('masks a value split one byte per record, with the other stream interleaved', () => {
    const m = matcherFor([SECRET]);
    const records: LogRecord[] = [];
    for (const ch of `x${SECRET}y`) {
      records.push({ seq: records.length, stream: 'stdout', data: Buffer.from(ch) });
      records.push({ seq: records.length, stream: 'stderr', data: Buffer.from('.') });
    }
    const out = maskAll(m, records);
    expect(out.map((r) => r.seq)).toEqual(records.map((r) => r.seq));
    expect(joined(out)).toBe('x***y');
    expect(joined(out, 'stderr')).toBe('.'.repeat(SECRET.length + 2));
  });

  it('holds a record that ends in a prefix until the next record of its stream decides it, then lets an innocent prefix through', () => {
    const m = matcherFor([SECRET]);
    const masker = new RecordMasker(m);
    expect(masker.push({ seq: 0, stream: 'stdout', data: Buffer.from('a hunt') })).toEqual([]);
    expect(masker.push({ seq: 1, stream: 'stderr', data: Buffer.from('err') })).toEqual([]);
    const next = masker.push({ seq: 2, stream: 'stdout', data: Buffer.from('ing trip\n') });
    expect(next.map((r) => [r.seq, r.data.toString()])).toEqual([
      [0, 'a hunt'],
      [1, 'err'],
      [2, 'ing trip\n'],
    ]);
    expect(masker.push({ seq: 3, stream: 'stdout', data: Buffer.from('hunter2') })).toEqual([]);
    expect(masker.end().map((r) => r.data.toString())).toEqual(['hunter2']);
  });

  it('masks nested and overlapping values leftmost-longest', () => {
    const m = matcherFor(['abcdef', 'cdefgh', 'abc']);
    expect(maskText(m, 'abcdefgh')).toBe('***gh');
    expect(maskText(m, 'xabcx')).toBe('x***x');
    expect(maskText(m, 'xcdefghx')).toBe('x***x');
  });

  it('keeps the masking identical for a resend from any record', () => {
    const m = matcherFor([SECRET, 'second-secret-value']);
    const text = `a ${SECRET} b second-secret-value c ${SECRET}`;
    const records = cut(text, [3, 5, 17, 30, 31, 44, 52]);
    const first = maskAll(m, records);
    for (let from = 0; from < records.length; from++) expect(maskAll(m, records, from)).toEqual(first.slice(from));
  });
});

/** Texts with secret forms planted at random places, cut at random points, spread over both streams. */
describe('fuzzed', () => {
  const alphabet = fc.constantFrom(...'abcdefgh/+=%\\"\n é'.split(''));
  const secretArb = fc.string({ unit: alphabet, minLength: 1, maxLength: 24 });
  const pieceArb = (secrets: string[]) =>
    fc.oneof(
      fc.string({ unit: alphabet, maxLength: 12 }),
      fc.constantFrom(...secrets),
      fc.constantFrom(...secrets).map((s) => Buffer.from(s).toString('base64')),
      fc.constantFrom(...secrets).map((s) => Buffer.from(`u:${s}`).toString('base64')),
      fc.constantFrom(...secrets).map((s) => encodeURIComponent(s)),
      fc.constantFrom(...secrets).map((s) => JSON.stringify(s)),
      fc.constantFrom(...secrets).map((s) => s.split('\n')[0]!),
    );
  const caseArb = fc.array(secretArb, { minLength: 1, maxLength: 3 }).chain((secrets) =>
    fc.record({
      secrets: fc.constant(secrets),
      out: fc.array(pieceArb(secrets), { maxLength: 12 }).map((p) => p.join('')),
      err: fc.array(pieceArb(secrets), { maxLength: 6 }).map((p) => p.join('')),
      outCuts: fc.array(fc.nat({ max: 400 }), { maxLength: 10 }),
      errCuts: fc.array(fc.nat({ max: 200 }), { maxLength: 5 }),
      order: fc.array(fc.boolean(), { maxLength: 30 }),
    }),
  );

  /** Interleaves the two streams' records by `order`, numbering them in that order. */
  function interleave(out: LogRecord[], err: LogRecord[], order: boolean[]): LogRecord[] {
    const all: LogRecord[] = [];
    let i = 0;
    while (out.length > 0 || err.length > 0) {
      const fromOut = err.length === 0 || (out.length > 0 && (order[i++] ?? true));
      const r = (fromOut ? out : err).shift()!;
      all.push({ ...r, seq: all.length });
    }
    return all;
  }

  it('masks every stream as masking it whole would, keeps every record, leaves no value, and resends the same', () => {
    fc.assert(
      fc.property(caseArb, ({ secrets, out, err, outCuts, errCuts, order }) => {
        const m = matcherFor(secrets);
        const records = interleave(cut(out, outCuts, 'stdout'), cut(err, errCuts, 'stderr'), order);
        const masked = maskAll(m, records);
        expect(masked.map((r) => [r.seq, r.stream])).toEqual(records.map((r) => [r.seq, r.stream]));
        expect(joined(masked, 'stdout')).toBe(maskText(m, out));
        expect(joined(masked, 'stderr')).toBe(maskText(m, err));
        for (const s of secrets) {
          if (s.includes('*')) continue;
          expect(Buffer.concat(masked.filter((r) => r.stream === 'stdout').map((r) => r.data)).includes(s)).toBe(false);
        }
        const from = records.length > 0 ? records.length >> 1 : 0;
        expect(maskAll(m, records, from)).toEqual(masked.slice(from));
      }),
      { numRuns: 500 },
    );
  });
});
