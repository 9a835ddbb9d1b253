import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AnnotationKind } from '../../proto/gen/runmesh/v1/job.js';
import { CommandParser, MAX_LINE, MAX_TEXT, type Found } from './commands.js';
import { MAX_ANNOTATIONS, ProgressReport } from './report.js';

/** Parses `chunks` as records 0, 1, ...; positions come back as offsets in the whole stream. */
function parse(chunks: readonly Buffer[]): Array<{ command: Found['command']; at: number }> {
  const p = new CommandParser();
  const starts: number[] = [];
  let total = 0;
  const found: Found[] = [];
  chunks.forEach((c, seq) => {
    starts.push(total);
    total += c.length;
    found.push(...p.push(c, seq));
  });
  found.push(...p.end());
  return found.map((f) => ({ command: f.command, at: (starts[f.seq] ?? 0) + f.offset }));
}

const text = (s: string) => parse([Buffer.from(s)]).map((f) => f.command);

describe('CommandParser', () => {
  it('finds each command at line start and says where its line starts', () => {
    const out = parse([
      Buffer.from('hello\n::progress 40 compiling\n::notice::all good\r\n::group build\n::endgroup\n::warning  w \n::error e'),
    ]);
    expect(out).toEqual([
      { command: { kind: 'progress', percent: 40, text: 'compiling' }, at: 6 },
      { command: { kind: 'notice', text: 'all good' }, at: 30 },
      { command: { kind: 'group', text: 'build' }, at: 50 },
      { command: { kind: 'endgroup' }, at: 64 },
      { command: { kind: 'warning', text: 'w' }, at: 75 },
      { command: { kind: 'error', text: 'e' }, at: 89 },
    ]);
  });

  it('takes lookalike and malformed lines as text', () => {
    const lines = [
      'echo ::progress 40', // not at line start
      ' ::notice indented',
      ':progress 40',
      '::progress 101',
      '::progress forty',
      '::progress -1',
      '::progress',
      '::notice',
      '::notice   ',
      '::endgroup now',
      '::Notice upper case',
      '::unknown thing',
      '::',
      '::progress40',
    ];
    expect(text(lines.join('\n'))).toEqual([]);
  });

  it('parses nothing between ::stop-commands::TOKEN and ::TOKEN::', () => {
    const out = text(
      ['::stop-commands::abc123', '::progress 10', '::group x', '::abc123:: trailing', ' ::abc123::', '::abc123::', '::progress 20'].join(
        '\n',
      ),
    );
    expect(out).toEqual([{ kind: 'progress', percent: 20, text: '' }]);
    // A bare name or an empty token does not stop anything.
    expect(text('::stop-commands\n::stop-commands::\n::notice n\n')).toEqual([{ kind: 'notice', text: 'n' }]);
  });

  it('cuts text at MAX_TEXT bytes on a character boundary, and carries at most MAX_LINE bytes of a long line', () => {
    const long = 'é'.repeat(5000); // 2 bytes each
    const [n] = text(`::notice ${long}\n::notice after\n`);
    expect(n).toEqual({ kind: 'notice', text: 'é'.repeat(MAX_TEXT / 2) });
    expect(text(`::notice ${long}\n::notice after\n`)[1]).toEqual({ kind: 'notice', text: 'after' });
    // A 10 MB line fed in small chunks: the parser holds at most MAX_LINE of it.
    const p = new CommandParser();
    const chunk = Buffer.alloc(64 * 1024, 'x');
    p.push(Buffer.from('::notice '), 0);
    for (let i = 0; i < 160; i++) p.push(chunk, i + 1);
    const held = (p as unknown as { kept: number }).kept;
    expect(held).toBeLessThanOrEqual(MAX_LINE);
    expect(p.push(Buffer.from('\n'), 200)[0]?.command).toEqual({ kind: 'notice', text: 'x'.repeat(MAX_TEXT) });
    // A stop token cut by the limit is not one, and an overlong end line does not end the stop.
    expect(text(`::stop-commands::${'t'.repeat(MAX_LINE)}\n::notice n\n`)).toEqual([{ kind: 'notice', text: 'n' }]);
  });

  it('finds the same commands, at the same places, however the stream is cut', () => {
    const line = fc.oneof(
      fc.constantFrom(
        '::progress 40',
        '::progress 100 done',
        '::progress::7 x',
        '::notice hi',
        '::warning::w',
        '::error e e',
        '::group g',
        '::endgroup',
        '::endgroup::',
        '::stop-commands::tok',
        '::tok::',
        '::progress 400',
        ':: notice',
        '::notice',
        'plain text',
        '',
        'é::notice no',
        '::notice ünïcödé',
      ),
      fc.string({ maxLength: 30 }),
    );
    const stream = fc
      .tuple(fc.array(line, { maxLength: 25 }), fc.constantFrom('\n', '\r\n'), fc.boolean())
      .map(([lines, eol, last]) => Buffer.from(lines.join(eol) + (last ? eol : '')));
    fc.assert(
      fc.property(stream, fc.array(fc.nat(), { maxLength: 12 }), (bytes, cuts) => {
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const chunks: Buffer[] = [];
        let from = 0;
        for (const p of [...points, bytes.length]) {
          chunks.push(bytes.subarray(from, p));
          from = p;
        }
        expect(parse(chunks)).toEqual(parse([bytes]));
        expect(parse([...bytes].map((b) => Buffer.from([b])))).toEqual(parse([bytes]));
      }),
      { numRuns: 400 },
    );
  });
});

describe('ProgressReport', () => {
  const at = (seq: number) => ({ seq, offset: 0 });

  it('keeps the latest progress, nests groups, and closes open ones where stdout ends', () => {
    const r = new ProgressReport();
    r.add({ kind: 'progress', percent: 10, text: 'a' }, at(0));
    r.add({ kind: 'group', text: 'outer' }, at(1));
    r.add({ kind: 'group', text: 'inner' }, at(2));
    r.add({ kind: 'endgroup' }, at(3));
    r.add({ kind: 'notice', text: 'from the file' });
    r.add({ kind: 'group', text: 'file groups fold nothing' });
    r.add({ kind: 'progress', percent: 60, text: 'b' });
    r.closeOpenGroups({ seq: 9, offset: 4 });
    r.add({ kind: 'endgroup' }, at(10)); // nothing open: text
    const p = r.take('j', 1);
    expect(p?.percent).toBe(60);
    expect(p?.text).toBe('b');
    expect(p?.annotations.map((a) => [a.kind, a.text, a.seq, a.fromFile])).toEqual([
      [AnnotationKind.ANNOTATION_KIND_GROUP_START, 'outer', 1, false],
      [AnnotationKind.ANNOTATION_KIND_GROUP_START, 'inner', 2, false],
      [AnnotationKind.ANNOTATION_KIND_GROUP_END, '', 3, false],
      [AnnotationKind.ANNOTATION_KIND_NOTICE, 'from the file', 0, true],
      [AnnotationKind.ANNOTATION_KIND_GROUP_END, '', 9, false],
    ]);
    expect(r.take('j', 1)).toBeUndefined(); // nothing new
  });

  it('bounds annotations, counts the rest, and still ends every group it kept', () => {
    const r = new ProgressReport();
    for (let i = 0; i < 60; i++) r.add({ kind: 'group', text: `g${i}` }, at(i));
    for (let i = 0; i < 500; i++) r.add({ kind: 'warning', text: 'w' }, at(100 + i));
    for (let i = 0; i < 60; i++) r.add({ kind: 'endgroup' }, at(1000 + i));
    const p = r.snapshot('j', 1);
    expect(p.annotations.length).toBeLessThanOrEqual(MAX_ANNOTATIONS);
    const starts = p.annotations.filter((a) => a.kind === AnnotationKind.ANNOTATION_KIND_GROUP_START).length;
    const ends = p.annotations.filter((a) => a.kind === AnnotationKind.ANNOTATION_KIND_GROUP_END).length;
    expect(starts).toBe(ends);
    expect(starts).toBe(32); // MAX_DEPTH
    expect(p.annotations.length + p.droppedAnnotations).toBe(2 * 32 + (60 - 32) + 500);
  });
});
