/**
 * `runmesh server --print-systemd-unit` and `runmesh agent --print-systemd-unit`:
 * a hardened unit whose ExecStart runs the same command with the flags given
 * beside --print-systemd-unit (node and the script by absolute path: systemd's
 * PATH does not know where npm put them).
 *
 * The server is an ordinary network daemon: a user of its own (runmesh), a
 * read-only system, no capabilities, its data dir the only writable place.
 *
 * The agent cannot be locked down as far, and the unit says why in comments:
 * it makes cgroups (Delegate=yes gives it its own subtree; ProtectControlGroups
 * would make cgroupfs read-only) and bwrap makes namespaces (no
 * RestrictNamespaces, PrivateUsers). Jobs run inside the unit's sandbox:
 * ProtectSystem=strict and ProtectHome apply to them too, so a job writes only
 * in its workspace and /tmp. With --job-user the agent must be root (it
 * switches jobs to that user, and bwrap sets the sandbox up as root): the unit
 * then has no User= and keeps root's capabilities, and the job user, bwrap and
 * cgroups are the containment. Without --job-user it runs as the runmesh
 * user, and jobs run as that user too (they can read the agent's credential
 * in the work dir).
 */
import { isAbsolute, resolve } from 'node:path';
import { UsageError } from './errors.js';

export interface UnitInput {
  command: 'server' | 'agent';
  /** The command's arguments as typed, without --print-systemd-unit. */
  args: readonly string[];
  /** The data dir (server) or work dir (agent) the command will use. */
  stateDir: string;
  /** True when neither the command line nor --config set it: the unit then names the default below. */
  stateDirDefaulted: boolean;
  /** Agent: --job-user, if given. */
  jobUser?: string;
  /** Agent: --shutdown-grace, so systemd waits for the drain before it kills. */
  shutdownGraceMs?: number;
}

export const UNIT_STATE_DIRS = { server: '/var/lib/runmesh', agent: '/var/lib/runmesh-agent' } as const;
const STATE_FLAGS = { server: '--data-dir', agent: '--work-dir' } as const;

/** Prints nothing itself: the unit text, or UsageError for a relative dir (a unit has no meaningful working directory). */
export function systemdUnit(u: UnitInput): string {
  const flag = STATE_FLAGS[u.command];
  const dir = u.stateDirDefaulted ? UNIT_STATE_DIRS[u.command] : u.stateDir;
  if (!isAbsolute(dir)) throw new UsageError(`--print-systemd-unit: give ${flag} as an absolute path (got "${dir}")`);
  const args = u.stateDirDefaulted ? [...u.args, flag, dir] : u.args;
  const execStart = [process.execPath, resolve(process.argv[1] ?? 'runmesh'), u.command, ...args].map(quote).join(' ');
  const stateDirectory = /^\/var\/lib\/[^/]+$/.test(dir)
    ? [`StateDirectory=${dir.slice('/var/lib/'.length)}`, 'StateDirectoryMode=0700']
    : [];
  const name = `runmesh-${u.command}`;
  const root = u.command === 'agent' && u.jobUser !== undefined;
  const user = root
    ? [
        `# No User=: with --job-user ${u.jobUser} the agent runs as root, to start each job as that user`,
        '# (bwrap sets the sandbox up as root, then drops to it). Root keeps its capabilities here.',
      ]
    : ['# Create the user once: useradd --system --no-create-home --shell /usr/sbin/nologin runmesh', 'User=runmesh', 'Group=runmesh'];
  const common = [
    'NoNewPrivileges=yes',
    'ProtectSystem=strict',
    `ReadWritePaths=${dir}`,
    ...stateDirectory,
    'ProtectHome=yes',
    'PrivateTmp=yes',
    'ProtectKernelTunables=yes',
    'ProtectKernelModules=yes',
    'ProtectKernelLogs=yes',
    'ProtectClock=yes',
    'RestrictRealtime=yes',
    'RestrictSUIDSGID=yes',
    'LockPersonality=yes',
    'UMask=0077',
    'LimitNOFILE=65536',
    '# MemoryDenyWriteExecute= is not set: V8 compiles JavaScript into executable memory.',
  ];
  const server = [
    'TimeoutStopSec=30s',
    ...user,
    ...common,
    'PrivateDevices=yes',
    'ProtectControlGroups=yes',
    'ProtectHostname=yes',
    'RestrictNamespaces=yes',
    'RemoveIPC=yes',
    '# No capabilities: ports below 1024 would need AmbientCapabilities=CAP_NET_BIND_SERVICE.',
    'CapabilityBoundingSet=',
    'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK',
    'SystemCallArchitectures=native',
    'SystemCallFilter=@system-service',
    'SystemCallErrorNumber=EPERM',
  ];
  const graceSeconds = Math.ceil((u.shutdownGraceMs ?? 60_000) / 1000) + 30;
  const agent = [
    '# On stop the agent drains: SIGTERM to it alone, its jobs get --shutdown-grace to end, then systemd kills what is left.',
    'KillMode=mixed',
    `TimeoutStopSec=${graceSeconds}s`,
    '# The agent makes a cgroup per job: systemd hands it its own subtree.',
    'Delegate=yes',
    ...user,
    '# Jobs run inside this sandbox too: they write only in their workspace (under the work dir) and /tmp.',
    ...common,
    '# Not set, on purpose: ProtectControlGroups (the agent writes cgroups), RestrictNamespaces and PrivateUsers',
    '# (bwrap makes namespaces), PrivateDevices and SystemCallFilter (jobs run whatever they run).',
  ];
  const secret = args.find((a) => /^--(join-)?token(=|$)/.test(a));
  const secretNote = secret
    ? [`# ${secret.split('=')[0]} is in this file: keep it mode 0600, or move it to an EnvironmentFile= (RUNMESH_JOIN_TOKEN).`]
    : [];
  return [
    `# runmesh ${u.command} as a systemd service. Made by: runmesh ${u.command} ... --print-systemd-unit`,
    `# Save as /etc/systemd/system/${name}.service, then: systemctl daemon-reload && systemctl enable --now ${name}`,
    `# systemctl reload ${name} sends SIGHUP: the --config file is read again and what can change live is applied.`,
    '[Unit]',
    u.command === 'server' ? 'Description=runmesh control-plane peer' : 'Description=runmesh agent',
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Service]',
    'Type=exec',
    ...secretNote,
    `ExecStart=${execStart}`,
    'ExecReload=/bin/kill -HUP $MAINPID',
    'Restart=on-failure',
    'RestartSec=2s',
    ...(u.command === 'server' ? server : agent),
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

/** One ExecStart word: quoted when it must be, with systemd's specifiers (%) and variables ($) escaped. */
export function quote(word: string): string {
  const escaped = word.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  if (escaped !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(escaped)) return escaped;
  return `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

/** The arguments after the command's name, as typed, without --print-systemd-unit, and with --config's file made absolute. */
export function argsAfter(rawArgs: readonly string[], command: string): string[] {
  const args = rawArgs.slice(rawArgs.indexOf(command, 2) + 1).filter((a) => a !== '--print-systemd-unit');
  return args.map((a, i) => {
    if (a.startsWith('--config=')) return `--config=${resolve(a.slice('--config='.length))}`;
    return args[i - 1] === '--config' ? resolve(a) : a;
  });
}
