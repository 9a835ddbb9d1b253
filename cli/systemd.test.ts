/** --print-systemd-unit: the hardening every unit needs, the agent's differences, ExecStart from the command line, and systemd's own verdict. */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, ROOT } from '../test/support/processes.js';
import { quote, systemdUnit } from './systemd.js';

const exec = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'runmesh-units-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The unit's settings as key -> values (a key may repeat), comments left out. */
function settings(unit: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of unit.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
  }
  return out;
}

const HARDENED = {
  NoNewPrivileges: ['yes'],
  ProtectSystem: ['strict'],
  ProtectHome: ['yes'],
  PrivateTmp: ['yes'],
  Restart: ['on-failure'],
  ExecReload: ['/bin/kill -HUP $MAINPID'],
};

const hasAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;

describe('--print-systemd-unit', () => {
  it('prints a hardened server unit running the command with the flags given, the --config file by absolute path', async () => {
    writeFileSync(join(dir, 'runmesh.yaml'), 'data-dir: /var/lib/runmesh\nrate-token: 50\n');
    const { stdout } = await exec(
      process.execPath,
      [CLI, 'server', '--config', 'runmesh.yaml', '--print-systemd-unit', '--listen', '0.0.0.0:7433'],
      {
        cwd: dir,
      },
    );
    const s = settings(stdout);
    expect(Object.fromEntries([...s].filter(([k]) => k in HARDENED))).toEqual(HARDENED);
    expect(s.get('ExecStart')).toEqual([
      `${process.execPath} ${join(ROOT, 'bin', 'runmesh.js')} server --config ${join(dir, 'runmesh.yaml')} --listen 0.0.0.0:7433`,
    ]);
    // The data dir came from the file: the unit gives exactly it to write.
    expect(s.get('ReadWritePaths')).toEqual(['/var/lib/runmesh']);
    expect(s.get('StateDirectory')).toEqual(['runmesh']);
    expect(s.get('User')).toEqual(['runmesh']);
    expect(s.get('CapabilityBoundingSet')).toEqual(['']);
    expect(s.has('Delegate')).toBe(false);
    writeFileSync(join(dir, 'runmesh-server.service'), stdout);
  });

  it('gives the agent cgroup delegation, a stop timeout past its drain, and root only for --job-user', () => {
    const base = {
      command: 'agent',
      args: ['--join-token', 'tok'],
      stateDir: './x',
      stateDirDefaulted: true,
      shutdownGraceMs: 120_000,
    } as const;
    const own = settings(systemdUnit(base));
    expect(Object.fromEntries([...own].filter(([k]) => k in HARDENED))).toEqual(HARDENED);
    expect(own.get('Delegate')).toEqual(['yes']);
    expect(own.get('KillMode')).toEqual(['mixed']);
    expect(own.get('TimeoutStopSec')).toEqual(['150s']);
    expect(own.get('User')).toEqual(['runmesh']);
    expect(own.get('ReadWritePaths')).toEqual(['/var/lib/runmesh-agent']);
    expect(own.get('ExecStart')?.[0]).toMatch(/ agent --join-token tok --work-dir \/var\/lib\/runmesh-agent$/);
    // Namespaces (bwrap) and cgroupfs writes stay allowed.
    for (const k of ['RestrictNamespaces', 'ProtectControlGroups', 'PrivateUsers', 'SystemCallFilter']) expect(own.has(k)).toBe(false);
    const unit = systemdUnit({
      ...base,
      args: ['--job-user', 'builder', '--work-dir', '/srv/agent'],
      stateDir: '/srv/agent',
      stateDirDefaulted: false,
      jobUser: 'builder',
    });
    const root = settings(unit);
    expect(root.has('User')).toBe(false);
    expect(unit).toMatch(/# No User=: with --job-user builder the agent runs as root/);
    expect(root.get('ReadWritePaths')).toEqual(['/srv/agent']);
    expect(root.has('StateDirectory')).toBe(false);
    expect(root.get('ExecStart')?.[0]).toMatch(/ agent --job-user builder --work-dir \/srv\/agent$/);
    writeFileSync(join(dir, 'runmesh-agent.service'), unit);
  });

  it('refuses a relative data dir, which a unit cannot mean', () => {
    expect(() => systemdUnit({ command: 'server', args: [], stateDir: './.runmesh', stateDirDefaulted: false })).toThrow(
      /give --data-dir as an absolute path \(got "\.\/\.runmesh"\)/,
    );
  });

  it('quotes ExecStart words as systemd reads them', () => {
    expect(quote('/usr/bin/node')).toBe('/usr/bin/node');
    expect(quote('a b')).toBe('"a b"');
    expect(quote('')).toBe('""');
    expect(quote('50%')).toBe('50%%');
    expect(quote('$HOME')).toBe('"$$HOME"');
    expect(quote('say "hi"\\')).toBe('"say \\"hi\\"\\\\"');
  });

  // CI installs systemd (.ci/run); elsewhere the check needs systemd-analyze on the machine.
  it.runIf(hasAnalyze || process.env.CI)('passes systemd-analyze verify without a warning', () => {
    const r = spawnSync('systemd-analyze', ['verify', join(dir, 'runmesh-server.service'), join(dir, 'runmesh-agent.service')], {
      encoding: 'utf8',
    });
    expect(r.error).toBeUndefined();
    // verify exits 0 for unknown keys and bad values, with a line naming the file: none may name ours.
    expect(r.stderr.split('\n').filter((l) => l.includes(dir))).toEqual([]);
    expect(r.status).toBe(0);
  });
});
