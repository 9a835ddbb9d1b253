/**
 * What this host offers to contain jobs, found once when the executor starts
 * and written into every attempt's spec.json (it is JSON), so the supervisor
 * and a later agent process use the same cgroups, sandbox and user without
 * finding them again: the cgroup setup (cgroup.ts), bubblewrap (sandbox.ts),
 * the user jobs run as (--job-user), and the default pids limit.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { detectCgroups, describeCgroups, type CgroupSetup } from './cgroup.js';
import { InvalidExecutorOptionError } from './errors.js';
import type { AttemptSpec, ExecutorDescription, ExecutorKind } from './executor.js';
import { detectSandbox, type SandboxSupport } from './sandbox.js';

export interface JobUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

export interface HostPlan {
  readonly cgroup: CgroupSetup;
  readonly sandbox: SandboxSupport;
  /** Jobs run as this user; absent: as the agent's own. */
  readonly user?: JobUser;
  /** Processes one attempt may have, unless its spec asks for fewer. */
  readonly pids: number;
  /** The agent's work dir: hidden from sandboxed jobs. */
  readonly workDir: string;
}

/** What the supervisor reads: the attempt as the agent asked for it, and the host it runs on. */
export interface SpecFile extends AttemptSpec {
  readonly host: HostPlan;
}

export const DEFAULT_PIDS_LIMIT = 4096;

export function planHost(o: { workDir: string; jobUser?: string; pidsLimit?: number; cgroupParent?: string; cgroups?: boolean }): HostPlan {
  const workDir = resolve(o.workDir);
  const pids = o.pidsLimit ?? DEFAULT_PIDS_LIMIT;
  if (!Number.isInteger(pids) || pids < 1) throw new InvalidExecutorOptionError('--pids-limit', `${pids} is not a whole number ≥ 1`);
  const user = o.jobUser ? lookUpUser(o.jobUser) : undefined;
  const name = agentCgroupName(workDir);
  const cgroup: CgroupSetup =
    o.cgroups === false
      ? { mode: 'none', reason: 'turned off (--no-cgroups)' }
      : detectCgroups({ name, ...(o.cgroupParent ? { parent: o.cgroupParent } : {}) });
  return { cgroup, sandbox: detectSandbox(), ...(user ? { user } : {}), pids, workDir };
}

/** One cgroup name per work dir: two agents on a host never share attempt cgroups, and a restarted agent finds its own. */
export function agentCgroupName(workDir: string): string {
  return `agent-${createHash('sha256').update(resolve(workDir)).digest('hex').slice(0, 12)}`;
}

export function describeHost(h: HostPlan): ExecutorDescription {
  const executors: ExecutorKind[] = h.sandbox.available ? ['shell', 'sandbox'] : ['shell'];
  const as = h.user ? `; jobs run as ${h.user.name} (uid ${h.user.uid})` : '';
  return { containment: `${describeCgroups(h.cgroup)}${as}`, executors };
}

/**
 * The passwd entry of `user` (a name or a uid), through getent so NSS users
 * (LDAP, sssd) resolve too. Switching to it needs root; running as root is
 * refused (it would gain nothing and hide a typo).
 */
function lookUpUser(user: string): JobUser {
  if (process.getuid?.() !== 0)
    throw new InvalidExecutorOptionError('--job-user', `running jobs as ${user} needs the agent to run as root`);
  const r = spawnSync('getent', ['passwd', user], { encoding: 'utf8', timeout: 10_000 });
  if (r.error) throw new InvalidExecutorOptionError('--job-user', `cannot look up ${user}: ${r.error.message}`);
  const [name = '', , uid = '', gid = '', , home = ''] = r.stdout.trim().split('\n')[0]?.split(':') ?? [];
  if (r.status !== 0 || !name) throw new InvalidExecutorOptionError('--job-user', `no such user: ${user}`);
  if (Number(uid) === 0)
    throw new InvalidExecutorOptionError('--job-user', `${user} is root: jobs would run with every right the agent has`);
  return { name, uid: Number(uid), gid: Number(gid), home };
}
