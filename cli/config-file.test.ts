/** `--config`: the file's keys through the flags' own parsers, errors with file, line and key, and the command line winning. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { buildProgram } from './program.js';
import { flagsWith, readConfigFile } from './config-file.js';

const dir = mkdtempSync(join(tmpdir(), 'runmesh-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(text: string): string {
  const path = join(dir, `c${++n}.yaml`);
  writeFileSync(path, text);
  return path;
}

function command(name: string): Command {
  const c = buildProgram().commands.find((cmd) => cmd.name() === name);
  if (!c) throw new Error(`no ${name} command`);
  return c;
}

/** Parses a command line as runmesh would, with the action replaced by one that keeps the flags. */
async function flagsOf(args: string[]): Promise<{ flags: Record<string, unknown>; command: Command }> {
  const program = buildProgram();
  const c = program.commands.find((cmd) => cmd.name() === args[0])!;
  let flags: Record<string, unknown> = {};
  c.action((f: Record<string, unknown>) => void (flags = f));
  await program.parseAsync(['node', 'runmesh', ...args]);
  return { flags, command: c };
}

describe('config file', () => {
  it('sets every kind of flag through its own parser: strings, whole numbers, durations, lists, booleans and --no- flags', () => {
    const path = file(
      [
        '# a comment',
        'data-dir: /var/lib/runmesh',
        'rate-token: 50',
        'heartbeat-timeout: 30s',
        'tenant-weight: [a=2, b=0.5]',
        'listen:',
        '  - 127.0.0.1:7433',
        '  - unix:///run/runmesh.sock',
        'tls-san: one.example',
        'websocket: false',
        'tls-auto: true',
      ].join('\n'),
    );
    const values = Object.fromEntries([...readConfigFile(command('server'), path)].map(([k, v]) => [k, [v.value, v.line]]));
    expect(values).toEqual({
      dataDir: ['/var/lib/runmesh', 2],
      rateToken: [50, 3],
      heartbeatTimeout: [30_000, 4],
      tenantWeight: [['a=2', 'b=0.5'], 5],
      listen: [['127.0.0.1:7433', 'unix:///run/runmesh.sock'], 6],
      tlsSan: [['one.example'], 9],
      websocket: [false, 10],
      tlsAuto: [true, 11],
    });
    const agent = readConfigFile(command('agent'), file('labels: [os=linux, gpu=a100]\nstandby-supervisor: false\ncgroups: false\n'));
    expect(agent.get('labels')?.value).toEqual(['os=linux', 'gpu=a100']);
    expect(agent.get('standbySupervisor')?.value).toBe(false);
    expect(agent.get('cgroups')?.value).toBe(false);
    expect(readConfigFile(command('dev'), file('')).size).toBe(0);
  });

  it.each([
    ['data-dir: /x\n\nrate-tokn: 5\n', /c\d+\.yaml:3: rate-tokn: unknown key/],
    ['rate-token: 0\n', /:1: rate-token: expected a whole number from 1 to 1000000, got "0"/],
    ['data-dir: /x\nheartbeat-timeout: soon\n', /:2: heartbeat-timeout: .*soon/],
    ['tenant-weight:\n  - a=1\n  - b=-1\n', /:1: tenant-weight: b=-1: the weight must be a positive number/],
    ['data-dir: [/a, /b]\n', /:1: data-dir: takes one value, not a list/],
    ['websocket: no-thanks\n', /:1: websocket: expected true or false/],
    ['log-level:\n', /:1: log-level: has no value/],
    ['http-listen: {host: a}\n', /:1: http-listen: expected a string or a number/],
    ['config: other.yaml\n', /:1: config: unknown key/],
    ['print-systemd-unit: true\n', /:1: print-systemd-unit: unknown key/],
    ['data-dir: /a\ndata-dir: /b\n', /:2: data-dir: given twice \(first on line 1\)/],
    ['- data-dir\n', /:1: expected a mapping of flag names to values/],
    ['a: [\n', /:1: /],
  ])('refuses %j naming the line and the key', (text, error) => {
    expect(() => readConfigFile(command('server'), file(text))).toThrow(error);
  });

  it('says which file could not be read', () => {
    expect(() => readConfigFile(command('server'), join(dir, 'absent.yaml'))).toThrow(/--config .*absent\.yaml: ENOENT/);
  });

  it('gives way to the command line, and wins over the defaults', async () => {
    const path = file('data-dir: /from/file\nrate-token: 50\nlog-level: debug\n');
    const { flags, command: c } = await flagsOf(['server', '--config', path, '--rate-token', '7']);
    expect(flags).toMatchObject({ dataDir: '/from/file', rateToken: 7, logLevel: 'debug', rateTenant: 5000 });
    // What a reload computes: the command line's values stay, the file's new ones come in, a removed key goes back to its default.
    writeFileSync(path, 'rate-token: 60\nlog-level: warn\n');
    expect(flagsWith(c, path)).toMatchObject({ dataDir: './.runmesh', rateToken: 7, logLevel: 'warn', websocket: true });
  });

  it('stops the command with the error before it starts', async () => {
    await expect(flagsOf(['agent', '--config', file('slots: many\n')])).rejects.toThrow(/:1: slots: expected a whole number/);
  });
});
