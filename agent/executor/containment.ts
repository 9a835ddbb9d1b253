/**
 * How the supervisor holds one attempt's processes: its cgroup where the host
 * has one (every process of the job, however it detached), its process group
 * always (the fallback, and the group the job's main process leads), and the
 * argv that puts the job there: the cgroup wrapper, then the sandbox or the
 * switch to the job user, then the job.
 */
import { accessSync, chownSync, constants, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import { AttemptCgroup } from './cgroup.js';
import type { AttemptLimits, AttemptUsage, WorkspaceFile } from './executor.js';
import type { SpecFile } from './host.js';
import { sandboxArgv } from './sandbox.js';

const SETPRIV = '/usr/bin/setpriv';
/** The variable naming the attempt's progress file to the job (executor.ts, PROGRESS_FILE). */
export const PROGRESS_ENV = 'RUNMESH_PROGRESS';

/** A program the job names that cannot be run: the job's own fault, found before the wrapper would only say "exit 127". */
export class ProgramError extends Error {
  constructor(
    readonly code: 'ENOENT' | 'EACCES',
    message: string,
  ) {
    super(message);
  }
}

export class Containment {
  /** The job's process group (its main process's pid); 0 before it runs. */
  pgid = 0;

  private constructor(
    private readonly spec: SpecFile,
    readonly cgroup: AttemptCgroup | undefined,
  ) {}

  /** Makes the attempt's cgroup (a CgroupError when the host cannot: the host's fault). */
  static create(spec: SpecFile): Containment {
    const { cgroup } = spec.host;
    const limits: AttemptLimits = { ...spec.limits, pids: pidsLimit(spec) };
    const cg = cgroup.mode === 'none' ? undefined : AttemptCgroup.create(cgroup, `${spec.jobId}.${spec.attempt}`, limits);
    return new Containment(spec, cg);
  }

  /**
   * What to spawn for `command` run in `workspace`. With a job user the
   * workspace (and the script, if any) becomes theirs. A program that cannot
   * be found or run throws ProgramError before anything is spawned: behind
   * the wrapper it would only be sh's exit 127.
   */
  argv(command: readonly string[], workspace: string, env: Readonly<Record<string, string>>, script?: string): string[] {
    const { host } = this.spec;
    if (host.user) for (const p of [workspace, script]) if (p) chownSync(p, host.user.uid, host.user.gid);
    const wrapped = this.cgroup !== undefined || host.user !== undefined || this.spec.executor === 'sandbox';
    if (wrapped && script === undefined) checkProgram(command[0] ?? '', env.PATH ?? '', workspace);
    let argv = [...command];
    if (this.spec.executor === 'sandbox') {
      if (!host.sandbox.available) throw new Error(`this host has no sandbox: ${host.sandbox.reason}`);
      const user = host.user && { uid: host.user.uid, gid: host.user.gid };
      argv = sandboxArgv(
        {
          bwrap: host.sandbox.bwrap,
          workspace,
          hide: [host.workDir],
          readOnly: script ? [script] : [],
          // The progress file the job is told of (its directory stays hidden).
          writable: env[PROGRESS_ENV] ? [env[PROGRESS_ENV]] : [],
          network: this.spec.network,
          ...(user ? { user } : {}),
        },
        argv,
      );
    } else if (host.user) {
      argv = [SETPRIV, `--reuid=${host.user.uid}`, `--regid=${host.user.gid}`, '--init-groups', '--inh-caps=-all', '--', ...argv];
    }
    return this.cgroup ? this.cgroup.wrap(argv) : argv;
  }

  /** The spec's files (secret files) into the workspace: 0600, the job user's, their directories made as needed. */
  writeFiles(workspace: string, files: readonly WorkspaceFile[]): void {
    const user = this.spec.host.user;
    for (const file of files) {
      const path = join(workspace, file.path);
      const missing: string[] = [];
      for (let dir = dirname(path); dir !== workspace && !existsSync(dir); dir = dirname(dir)) missing.unshift(dir);
      for (const dir of missing) {
        mkdirSync(dir, { mode: 0o700 });
        if (user) chownSync(dir, user.uid, user.gid);
      }
      writeFileSync(path, file.content, { mode: 0o600 });
      if (user) chownSync(path, user.uid, user.gid);
    }
  }

  /** To every process of the job: its cgroup's and its group's (which may have left the cgroup's view only by being gone). */
  signal(sig: NodeJS.Signals): void {
    this.cgroup?.signal(sig);
    if (this.pgid === 0) return;
    try {
      process.kill(-this.pgid, sig);
    } catch {
      // the group is already gone
    }
  }

  /** SIGKILL to everything; with a cgroup, resolves once it is empty (frozen first, so nothing forks past it). */
  async kill(): Promise<void> {
    this.signal('SIGKILL');
    await this.cgroup?.kill();
  }

  /** Nothing of the job is left: its cgroup is empty, or without one, its group. */
  empty(): boolean {
    if (this.cgroup) return !this.cgroup.populated();
    if (this.pgid === 0) return true;
    try {
      process.kill(-this.pgid, 0);
      return false;
    } catch {
      return true;
    }
  }

  usage(): AttemptUsage | undefined {
    return this.cgroup?.usage();
  }

  oomKills(): number {
    return this.cgroup?.oomKills() ?? 0;
  }

  /** Removes the cgroup once it is empty; best effort (a later agent's recovery retries). */
  remove(): void {
    try {
      this.cgroup?.remove();
    } catch {
      // still populated or already gone: nothing more to do here
    }
  }
}

/** The attempt's pids limit: the spec's if it asks for one under the host's, else the host's. */
function pidsLimit(spec: SpecFile): number {
  const asked = spec.limits.pids;
  return asked > 0 && asked < spec.host.pids ? asked : spec.host.pids;
}

/** Finds `program` the way execvp would (PATH for a bare name, relative to cwd for a path) and checks it may be run. */
function checkProgram(program: string, path: string, cwd: string): void {
  const candidates = program.includes('/')
    ? [isAbsolute(program) ? program : join(cwd, program)]
    : path
        .split(delimiter)
        .filter(Boolean)
        .map((d) => join(d, program));
  let denied = false;
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EACCES') denied = true;
    }
  }
  if (denied) throw new ProgramError('EACCES', `${program}: permission denied`);
  throw new ProgramError('ENOENT', `${program}: not found`);
}
