/** /proc inspection for tests: which live processes belong to a job (by its environment). */
import { readdirSync, readFileSync } from 'node:fs';

export function pidsWithEnv(entry: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const env = readFileSync(`/proc/${name}/environ`, 'latin1');
      if (!env.split('\0').includes(entry)) continue;
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue; // zombies hold no resources
      out.push(Number(name));
    } catch {
      // the process went away while we looked
    }
  }
  return out;
}

/** Live processes of a job: everything spawned with RUNMESH_JOB_ID=<id>. */
export const jobPids = (jobId: string): number[] => pidsWithEnv(`RUNMESH_JOB_ID=${jobId}`);
