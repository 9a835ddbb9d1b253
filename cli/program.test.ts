import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { durationText } from './flags.js';
import { COMMAND_MODULES, programFor } from './lazy.js';
import { buildProgram } from './program.js';

/** Every leaf command, by its path (`jobs cancel`). */
function leaves(command: Command, path: string[] = []): [string, Command][] {
  if (command.commands.length === 0) return [[path.join(' '), command]];
  return command.commands.flatMap((c) => leaves(c, [...path, c.name()]));
}

const longFlags = (c: Command): (string | undefined)[] => c.options.map((o) => o.long);

describe('the runmesh command tree', () => {
  it('gives every client command (one that takes --server) a --json', () => {
    const clients = leaves(buildProgram()).filter(([, c]) => longFlags(c).includes('--server') && longFlags(c).includes('--token'));
    expect(clients.length).toBeGreaterThan(10);
    const without = clients.filter(([, c]) => !longFlags(c).includes('--json')).map(([name]) => name);
    expect(without).toEqual([]);
  });

  it('shows every duration default in --help as a duration, not milliseconds', () => {
    const shown = leaves(buildProgram()).flatMap(([name, c]) =>
      c.options
        .filter((o) => o.flags.includes('<duration>') && o.defaultValue !== undefined)
        .map((o) => `${name} ${o.long} ${o.defaultValueDescription ?? String(o.defaultValue)}`),
    );
    expect(shown).toContain('server --job-retention 7d');
    expect(shown).toContain('agent --shutdown-grace 1m');
    expect(shown.filter((line) => !/ (0|\d+(ms|s|m|h|d))$/.test(line))).toEqual([]);
  });

  it('writes durations as they would be typed', () => {
    expect([0, 500, 5000, 90_000, 3_600_000, 604_800_000, 1500].map(durationText)).toEqual([
      '0',
      '500ms',
      '5s',
      '90s',
      '1h',
      '7d',
      '1500ms',
    ]);
  });

  it('loads each top-level command on its own, and the table names every command', async () => {
    const all = buildProgram().commands.map((c) => c.name());
    expect(COMMAND_MODULES.flatMap(([names]) => names).sort()).toEqual([...all].sort());
    for (const [names] of COMMAND_MODULES) {
      const program = await programFor(['node', 'runmesh', names[0]!, '--help']);
      expect(program.commands.map((c) => c.name())).toEqual(names);
    }
    expect((await programFor(['node', 'runmesh', '--version'])).commands).toEqual([]);
    expect((await programFor(['node', 'runmesh', '--help'])).commands.map((c) => c.name())).toEqual(all);
    expect((await programFor(['node', 'runmesh', 'no-such-command'])).commands.map((c) => c.name())).toEqual(all);
  });
});
