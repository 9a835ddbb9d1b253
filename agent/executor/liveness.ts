/**
 * Is an attempt's supervisor (or its job) still there? Answered from /proc,
 * and only "yes" for the very process we mean: a pid from a file may have been
 * recycled by the time a restarted agent reads it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { files } from './files.js';

/** State and process group from /proc/<pid>/stat; the command name may hold spaces and parentheses. */
function stat(pid: number): { state: string; pgrp: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const fields = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0] ?? '', pgrp: Number(fields[2]) };
  } catch {
    return undefined;
  }
}

const running = (pid: number): boolean => {
  const s = stat(pid);
  return s !== undefined && s.state !== 'Z' && s.state !== 'X';
};

/**
 * `pid` is a live supervisor.js process working on `dir`: started with `dir`
 * as its argument, or a standby started with the token `dir` records.
 */
export function isSupervisor(pid: number, dir: string): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const marks = supervisorMarks(dir);
    return argv.some((a) => a.endsWith('supervisor.js')) && argv.some((a) => marks.includes(a)) && running(pid);
  } catch {
    return false;
  }
}

/** The command-line arguments that name `dir`'s supervisor: the dir itself, and a standby's token. */
export function supervisorMarks(dir: string): string[] {
  try {
    return [dir, readFileSync(files(dir).standby, 'utf8')];
  } catch {
    return [dir];
  }
}

/** Every argument of every live supervisor.js process on the host: the tokens of those running. */
export function supervisorArgs(): Set<string> {
  const out = new Set<string>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (argv.some((a) => a.endsWith('supervisor.js')) && running(Number(name))) argv.forEach((a) => out.add(a));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * Live members of process group `pgid` that belong to the attempt whose
 * workspace is `workspace` (their environment says so), so that a recycled
 * group id never gets someone else's processes killed.
 */
export function jobGroupMembers(pgid: number, workspace: string): number[] {
  const mark = `RUNMESH_WORKSPACE=${workspace}`;
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    const s = stat(pid);
    if (!s || s.pgrp !== pgid || s.state === 'Z') continue;
    try {
      if (readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(mark)) out.push(pid);
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return out;
}

/** Any process left in group `pgid` (signal 0 to the group: nothing is sent). */
export function groupAlive(pgid: number): boolean {
  if (pgid <= 0) return false;
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGKILL to the job's group if any of it is left; true if there was something to kill. */
export function killJobGroup(pgid: number, workspace: string): boolean {
  if (pgid <= 0 || jobGroupMembers(pgid, workspace).length === 0) return false;
  try {
    process.kill(-pgid, 'SIGKILL');
    return true;
  } catch {
    return false; // it went away on its own
  }
}
