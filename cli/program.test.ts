import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
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
});
