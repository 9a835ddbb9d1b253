import { describe, expect, it } from 'vitest';
import { parseLine, PLAIN } from './ansi.js';
import { foldGroups, LogModel, type GroupMark } from './model.js';

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

  it("folds where the agent's marks say, not where the text looks like a group", () => {
    const m = new LogModel();
    // Record 0 and 1 of stdout; the group line starts in record 0 at byte 7 ('é' is two bytes) and ends in record 1.
    m.append('stdout', 'befé\n::group build step\ninside\n::group inner\n::endgr', 0);
    m.append('stderr', '::group lookalike on stderr\n', 1);
    m.append('stdout', 'oup\n::endgroup\nafter\n::group open one\nstill\n', 2);
    const marks: GroupMark[] = [
      { kind: 'group_start', text: 'build step', seq: 0, offset: 6 },
      { kind: 'group_start', text: 'inner', seq: 0, offset: 32 },
      { kind: 'group_end', text: '', seq: 0, offset: 46 },
      { kind: 'group_end', text: '', seq: 2, offset: 4 },
      { kind: 'group_start', text: 'open one', seq: 2, offset: 21 },
    ];
    const { groups, of } = foldGroups(m.lines, marks, m.ended);
    expect(groups).toEqual([
      { name: 'build step', line: 2, ended: true },
      { name: 'open one', line: 9, ended: false },
    ]);
    // The stderr lookalike (line 6) sits inside the group only because it came while the group was open.
    expect(of).toEqual([-1, 0, 0, 0, 0, 0, 0, -1, 1, 1]);
    // Without marks nothing folds, whatever the text says.
    expect(foldGroups(m.lines, [], false).groups).toEqual([]);
    // Once the attempt ended, a group closed where stdout ended (no line starts there) ends with the last line.
    m.finish();
    const closed = foldGroups(m.lines, [...marks, { kind: 'group_end', text: '', seq: 2, offset: 44 }], m.ended);
    expect(closed.groups[1]).toEqual({ name: 'open one', line: 9, ended: true });
  });
});
