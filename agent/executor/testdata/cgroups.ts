/**
 * Test hygiene: every test work dir gets an agent cgroup of its own (named by
 * the work dir), which a real agent keeps for its life and reuses across
 * restarts. Tests make hundreds of work dirs, so their cleanup removes the
 * agent's cgroups (and any empty attempt cgroups left in them), best effort.
 */
import { readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { findCgroupMounts } from '../cgroup.js';
import { agentCgroupName } from '../host.js';

export function removeAgentCgroups(workDir: string): void {
  const name = agentCgroupName(workDir);
  const mounts = findCgroupMounts(readFileSync('/proc/self/mountinfo', 'utf8'));
  const bases = [
    ...(mounts.v2 ? [join(mounts.v2, 'runmesh.slice', name)] : []),
    ...new Set(Object.values(mounts.v1 ?? {}).map((m) => join(m, 'runmesh', name))),
  ];
  for (const base of bases) {
    let children: string[] = [];
    try {
      children = readdirSync(base, { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => join(base, d.name));
    } catch {
      continue; // none here
    }
    for (const dir of [...children, base]) {
      try {
        rmdirSync(dir);
      } catch {
        // still holds processes (a test's leftover), or already gone
      }
    }
  }
}
