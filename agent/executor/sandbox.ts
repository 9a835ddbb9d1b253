/**
 * The `sandbox` executor's jail: the argv that runs a job under bubblewrap
 * (`bwrap`, Debian's `bubblewrap`), modelled on nsjail. The supervisor runs
 * `cgroupWrap(sandboxArgv(...))`; this module only builds the argv and says
 * whether the host can run it (`detectSandbox`, once at agent start).
 *
 * What the job sees (mounts are emitted parents first, so a deeper mount
 * always lands on top of a shallower one whatever order the caller gave):
 * - read-only: /usr, /etc, /opt and `readOnly`; /bin, /sbin, /lib* as on the
 *   host (a symlink where /usr is merged, a read-only bind where not);
 *   /run/systemd/resolve when it exists, for a resolv.conf that links there;
 * - writable: the workspace, at the same path as outside (RUNMESH_WORKSPACE
 *   stays true; it is the cwd), and a fresh /tmp (tmpfs, 1777);
 * - a new /proc of its own PID namespace, with /proc/sys (and sysrq-trigger)
 *   read-only: uid 0 may write sysctls without any capability, and
 *   kernel.core_pattern or kernel.modprobe pointing into the workspace would
 *   run the job's code as host root; a minimal /dev (null, zero, random, tty,
 *   a private devpts);
 * - nothing else: no /root, /home, /var, /srv, /work, /mnt, host /tmp, /run,
 *   /sys. The root itself is read-only. Parents of the workspace exist but are
 *   empty and 0711 (a job user can reach its workspace, not list them).
 * - `hide` plus host secrets (shadow files, SSH host keys, /etc/ssl/private,
 *   /etc/runmesh) are covered where they would otherwise be visible: a
 *   directory by an empty read-only tmpfs, a file by /dev/null. A hidden path
 *   nothing exposes needs nothing (the agent's work dir is not visible unless
 *   it sits under /opt or a `readOnly` path; the workspace inside it stays).
 *
 * Privileges. Without `user`, the job keeps the supervisor's identity (often
 * root) but with no capability at all (`--cap-drop ALL`, and bwrap sets
 * no_new_privs, so setuid binaries do not help), in a user namespace of its
 * own in which it may not make more (`--disable-userns`: fewer kernel paths
 * to attack). It owns its workspace, so it can write there. With `user`,
 * bwrap still sets the sandbox up as root (so the agent's work dir may stay
 * 0700: an unprivileged bwrap could not even reach the workspace to bind it),
 * keeps only CAP_SETUID/SETGID, and `setpriv --reuid --regid --init-groups`
 * inside drops to the user, which clears them. The caller chowns the
 * workspace to that user; the uid must have a passwd entry (initgroups).
 * Not chosen: bwrap's `--uid` (as root it only renames root: the job stays
 * host uid 0), and setpriv in front of bwrap (needs unprivileged user
 * namespaces and a traversable work dir, and shows every host file as nobody).
 *
 * Signals. `--die-with-parent` SIGKILLs the namespace's init when the outer
 * bwrap dies, and the kernel then kills everything in the PID namespace, even
 * what called setsid: SIGKILL to the outer bwrap (or its group) ends the job
 * whole. Two consequences for the caller:
 * - bwrap forwards no signal, and dies of SIGTERM, which would turn the
 *   supervisor's SIGTERM-to-the-group into an instant SIGKILL. So the outer
 *   bwrap runs with SIGTERM ignored (`env --ignore-signal=TERM`) and the job
 *   with it back to default (`env --default-signal=TERM`): SIGTERM to the
 *   group reaches the job, which gets its grace; SIGKILL then ends it all.
 * - bwrap is also killed when ITS parent dies: a sandboxed job does not
 *   outlive its supervisor (nor the thread that spawned it). Anything between
 *   them that execs (the cgroup `sh -c ... exec "$@"`, setpriv) does not
 *   count; a wrapper that forks would stand in for the supervisor.
 * No `--new-session`: the supervisor spawns the job detached, so it already
 * leads a session with no controlling terminal and no tty fd (stdio are
 * pipes), and the sandbox's devpts is private: TIOCSTI has nothing to reach.
 * A new session would take the job out of the group the supervisor signals.
 * When the job's main process exits, bwrap's init exits and the kernel kills
 * whatever the job left running (the shell executor gives leftovers a grace).
 *
 * Composition: `sh -c 'echo $$ > .../cgroup.procs && exec "$@"' sh <this argv>`
 * moves the process into the attempt's cgroup and execs env, which execs
 * bwrap: every process of the job is in the cgroup, the spawned pid is the
 * outer bwrap, and its process group is the job's.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, lstatSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, isAbsolute, join, sep } from 'node:path';

export type SandboxSupport = { available: true; bwrap: string; version: string } | { available: false; reason: string };

export interface SandboxOptions {
  /** Path of the bwrap binary (from detectSandbox). */
  readonly bwrap: string;
  /** Absolute; the only writable host directory; the job's cwd, at the same path inside. */
  readonly workspace: string;
  /** Absolute host paths the job must not see even where a read-only bind would show them (the agent's work dir, ...). */
  readonly hide: readonly string[];
  /** More absolute host paths to show read-only (toolchains); [] for none. */
  readonly readOnly: readonly string[];
  /** false: the job gets a network namespace of its own, with only a loopback that is down. */
  readonly network: boolean;
  /** Absolute host files bound writable at the same path (the progress file); default none. */
  readonly writable?: readonly string[];
  /** Run the job as this user (see the header); absent: the supervisor's own uid, without capabilities. */
  readonly user?: { readonly uid: number; readonly gid: number };
}

/** Outside Debian's merged /usr these are the same paths: env and setpriv come with every Debian system. */
const ENV = '/usr/bin/env';
const SETPRIV = '/usr/bin/setpriv';
const SYSTEM_DIRS = ['/usr', '/etc', '/opt'];
const ROOT_LINKS = ['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];
const HOST_SECRETS = ['/etc/shadow', '/etc/shadow-', '/etc/gshadow', '/etc/gshadow-', '/etc/ssl/private', '/etc/runmesh'];
const TRIAL_TIMEOUT_MS = 10_000;

/** Whether bubblewrap works here: `bwrap` on PATH and a trial job runs (user namespaces may be disabled). JSON-serialisable. */
export function detectSandbox(): SandboxSupport {
  const bwrap = onPath('bwrap');
  if (bwrap === undefined) return { available: false, reason: 'bwrap not found on PATH (install bubblewrap)' };
  return probeSandbox(bwrap);
}

/** detectSandbox for a given bwrap binary: its version, then a trial job without network in a throwaway workspace. */
export function probeSandbox(bwrap: string): SandboxSupport {
  const v = spawnSync(bwrap, ['--version'], { encoding: 'utf8', timeout: TRIAL_TIMEOUT_MS });
  if (v.error) return { available: false, reason: `${bwrap} --version: ${v.error.message}` };
  if (v.status !== 0) return { available: false, reason: `${bwrap} --version exited ${v.status}: ${v.stderr.trim()}` };
  const version = v.stdout.trim().replace(/^bubblewrap\s+/, '');
  const workspace = mkdtempSync(join(tmpdir(), 'runmesh-sandbox-probe-'));
  try {
    const [cmd = '', ...args] = sandboxArgv({ bwrap, workspace, hide: [], readOnly: [], network: false }, ['/bin/true']);
    const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: TRIAL_TIMEOUT_MS, killSignal: 'SIGKILL' });
    if (r.error) return { available: false, reason: `trial run: ${r.error.message}` };
    if (r.status !== 0) return { available: false, reason: `trial run exited ${r.status ?? r.signal}: ${r.stderr.trim()}` };
    return { available: true, bwrap, version };
  } finally {
    rmSync(workspace, { recursive: true, force: true });
  }
}

/** The argv that runs `argv` in the sandbox. Reads the host's layout (a few lstat calls) to mirror /bin, /lib... and find what to hide. */
export function sandboxArgv(o: SandboxOptions, argv: readonly string[]): string[] {
  check(o, argv);
  return [ENV, '--ignore-signal=TERM', '--', o.bwrap, ...mountArgs(o), ...processArgs(o), '--', ...inner(o, argv)];
}

function check(o: SandboxOptions, argv: readonly string[]): void {
  if (argv.length === 0) throw new TypeError('sandboxArgv: empty argv');
  for (const p of [o.workspace, ...o.hide, ...o.readOnly, ...(o.writable ?? [])]) {
    if (!isAbsolute(p) || p === sep) throw new TypeError(`sandboxArgv: not an absolute path below /: ${p}`);
  }
  if (o.bwrap.includes('=')) throw new TypeError(`sandboxArgv: env would take the bwrap path for a variable: ${o.bwrap}`);
}

/** One mount: its destination orders it (parents first), `args` are its bwrap options. */
interface Mount {
  readonly dest: string;
  readonly args: readonly string[];
}

function mountArgs(o: SandboxOptions): string[] {
  const shown = [...SYSTEM_DIRS.filter(isDir), ...o.readOnly];
  const visible = [...shown, o.workspace];
  const hidden = [...HOST_SECRETS, ...sshHostKeys(), ...o.hide].filter((p) => visible.some((v) => within(p, v)) && exists(p));
  const hiddenDirs = hidden.filter(isDir);
  const mounts: Mount[] = [
    ...shown.map((p) => ({ dest: p, args: ['--ro-bind', p, p] })),
    ...ROOT_LINKS.flatMap(rootEntry),
    { dest: '/run/systemd/resolve', args: ['--ro-bind-try', '/run/systemd/resolve', '/run/systemd/resolve'] },
    { dest: '/proc', args: ['--proc', '/proc'] },
    { dest: '/proc/sys', args: ['--ro-bind', '/proc/sys', '/proc/sys'] },
    { dest: '/proc/sysrq-trigger', args: ['--ro-bind-try', '/proc/sysrq-trigger', '/proc/sysrq-trigger'] },
    { dest: '/dev', args: ['--dev', '/dev'] },
    { dest: '/tmp', args: ['--perms', '1777', '--tmpfs', '/tmp'] },
    ...hidden.map((p) => ({ dest: p, args: hiddenDirs.includes(p) ? ['--tmpfs', p] : ['--ro-bind', '/dev/null', p] })),
    { dest: o.workspace, args: ['--bind', o.workspace, o.workspace] },
    ...(o.writable ?? []).map((p) => ({ dest: p, args: ['--bind', p, p] })),
  ];
  const parents = freshAncestors(o.workspace, mounts).map((p) => ({ dest: p, args: ['--perms', '0711', '--dir', p] }));
  // Stable: at equal depth the caller's order stands, so a hide lands on the bind it hides in.
  const ordered = [...mounts, ...parents].sort((a, b) => depth(a.dest) - depth(b.dest));
  return [...ordered.flatMap((m) => m.args), ...[...hiddenDirs, sep].flatMap((p) => ['--remount-ro', p])];
}

/**
 * Parents of the workspace that bwrap creates rather than shows from the host
 * (the deepest mount above them is a tmpfs, or only the root's): made 0711 so
 * a job user can pass through them; bwrap would copy the host's mode, often 0700.
 */
function freshAncestors(workspace: string, mounts: readonly Mount[]): string[] {
  return ancestors(workspace).filter((p) => {
    const cover = mounts.filter((m) => within(p, m.dest)).sort((a, b) => depth(b.dest) - depth(a.dest))[0];
    return cover === undefined || (cover.dest !== p && cover.args.includes('--tmpfs'));
  });
}

function processArgs(o: SandboxOptions): string[] {
  const identity =
    o.user === undefined
      ? ['--unshare-user', '--disable-userns', '--cap-drop', 'ALL']
      : ['--cap-drop', 'ALL', '--cap-add', 'CAP_SETUID', '--cap-add', 'CAP_SETGID'];
  return [
    '--unshare-pid',
    '--unshare-ipc',
    '--unshare-uts',
    '--unshare-cgroup-try',
    ...(o.network ? [] : ['--unshare-net']),
    ...identity,
    '--die-with-parent',
    '--chdir',
    o.user === undefined ? o.workspace : sep,
  ];
}

/**
 * The command bwrap execs: the user switch, SIGTERM back to default, the cwd,
 * then the job. With a user, bwrap's own --chdir would run with capabilities
 * already dropped, and root without CAP_DAC_OVERRIDE cannot enter a 0700
 * workspace of the job user's: the job user enters it (env --chdir).
 */
function inner(o: SandboxOptions, argv: readonly string[]): string[] {
  const become =
    o.user === undefined ? [] : [SETPRIV, `--reuid=${o.user.uid}`, `--regid=${o.user.gid}`, '--init-groups', '--inh-caps=-all', '--'];
  const cwd = o.user === undefined ? [] : [`--chdir=${o.workspace}`];
  // env reads a leading NAME=VALUE as an assignment; setpriv with nothing to change only execs.
  const literal = argv[0]?.includes('=') ? [SETPRIV, '--'] : [];
  return [...become, ENV, '--default-signal=TERM', ...cwd, '--', ...literal, ...argv];
}

/** /bin, /lib...: a symlink where the host has one (merged /usr), a read-only bind where it has a directory. */
function rootEntry(p: string): Mount[] {
  const st = lstatOrUndefined(p);
  if (st?.isSymbolicLink()) return [{ dest: p, args: ['--symlink', readlinkSync(p), p] }];
  if (st?.isDirectory()) return [{ dest: p, args: ['--ro-bind', p, p] }];
  return [];
}

function sshHostKeys(): string[] {
  try {
    return readdirSync('/etc/ssh')
      .filter((f) => /^ssh_host_.*_key$/.test(f))
      .map((f) => join('/etc/ssh', f));
  } catch {
    return [];
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/** Proper ancestors of p, shallowest first, without the root. */
function ancestors(p: string): string[] {
  const out: string[] = [];
  for (let d = dirname(p); d !== sep; d = dirname(d)) out.unshift(d);
  return out;
}

const within = (p: string, dir: string): boolean => p === dir || p.startsWith(dir + sep);
const depth = (p: string): number => p.split(sep).filter(Boolean).length;
const exists = (p: string): boolean => lstatOrUndefined(p) !== undefined;
const isDir = (p: string): boolean => lstatOrUndefined(p)?.isDirectory() === true;

function lstatOrUndefined(p: string): ReturnType<typeof lstatSync> | undefined {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
}
