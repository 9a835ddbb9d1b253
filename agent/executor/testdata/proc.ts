/** /proc inspection for the executor tests, independent of the code under test. */
import { readdirSync, readFileSync } from 'node:fs';

function statFields(pid: string): string[] | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Live (non-zombie) processes whose process group is `pgid`. */
export function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const f = statFields(name);
    if (f && f[0] !== 'Z' && Number(f[2]) === pgid) out.push(Number(name));
  }
  return out;
}

/** Live processes whose command line (split into arguments) satisfies `pred`. */
function pidsWhere(pred: (argv: string[]) => boolean): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      const f = statFields(name);
      if (pred(argv) && f && f[0] !== 'Z') out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Live processes whose command line contains `needle` as one argument. */
export const pidsWithArg = (needle: string): number[] => pidsWhere((argv) => argv.includes(needle));

/** Live processes with an argument that starts with `prefix`. */
export const pidsWithArgPrefix = (prefix: string): number[] => pidsWhere((argv) => argv.some((a) => a.startsWith(prefix)));

export function alive(pid: number): boolean {
  const f = statFields(String(pid));
  return f !== undefined && f[0] !== 'Z';
}

/** SIGKILL to every live process whose command line names `arg` (an attempt dir) and to the given groups. */
export function killLeftovers(arg: string, pgids: number[]): void {
  for (const pid of pidsWithArg(arg)) tryKill(pid);
  for (const pgid of pgids) tryKill(-pgid);
}

function tryKill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}
