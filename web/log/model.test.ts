import { describe, expect, it } from 'vitest';
import { parseLine, PLAIN } from './ansi.js';
import { LogModel } from './model.js';

describe('ANSI', () => {
  it('turns SGR codes into runs with classes and styles, and drops other escapes', () => {
    const { runs, pen } = parseLine('a\x1b[1;31mred\x1b[0m b \x1b[38;5;196mx\x1b[38;2;1;2;3my\x1b[2Kz\x1b[32m', PLAIN);
    expect(runs.map((r) => [r.text, r.classes, r.style?.color])).toEqual([
      ['a', '', undefined],
      ['red', 'fg-c1 b', undefined],
      [' b ', '', undefined],
      ['x', '', 'rgb(255,0,0)'],
      ['y', '', 'rgb(1,2,3)'],
      ['z', '', 'rgb(1,2,3)'],
    ]);
    expect(pen.fg).toBe('c2'); // carried to the next line
  });
});

describe('LogModel', () => {
  it('cuts lines across records per stream, and keeps an unfinished line open until its end or the attempt ends', () => {
    const m = new LogModel();
    expect(m.append('stdout', 'one\ntw')).toBe(true);
    expect(m.append('stderr', 'err')).toBe(false);
    m.append('stdout', 'o\r\n');
    m.finish();
    expect(m.lines.map((l) => [l.n, l.stream, l.runs.map((r) => r.text).join('')])).toEqual([
      [1, 'stdout', 'one'],
      [2, 'stdout', 'two'],
      [3, 'stderr', 'err'],
    ]);
  });

  it('groups the lines between ::group and ::endgroup', () => {
    const m = new LogModel();
    m.append('stdout', 'before\n::group build step\ninside\n::endgroup\nafter\n::group open one\nstill\n');
    expect(m.groups).toEqual([
      { name: 'build step', line: 2, ended: true },
      { name: 'open one', line: 6, ended: false },
    ]);
    expect(m.lines.map((l) => l.group)).toEqual([-1, 0, 0, 0, -1, 1, 1]);
  });
});
