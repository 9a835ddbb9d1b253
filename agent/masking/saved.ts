/**
 * An attempt's secret values, kept beside the agent's work so that an agent
 * restarted mid-attempt masks what it resumes sending: the Assign that
 * carried them is not sent again. One file per attempt, mode 0600 in a 0700
 * directory of the work dir (on the host, like the attempt's spec.json,
 * which holds the same values as its environment), written before the
 * attempt starts and removed once the control plane has its result.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../executor/files.js';

const DIR = 'masks';

const fileOf = (workDir: string, key: string): string => join(workDir, DIR, `${key.replace('/', '.')}.json`);

/** Saves `values` for the attempt `key` (jobId/attempt), durably; none saves nothing. */
export function saveMasks(workDir: string, key: string, values: readonly string[]): void {
  if (values.length === 0) return;
  mkdirSync(join(workDir, DIR), { recursive: true, mode: 0o700 });
  writeFileAtomicSync(fileOf(workDir, key), JSON.stringify(values), { durable: true });
}

/** The values saved for `key`; none when nothing was (an attempt without secrets). */
export function loadMasks(workDir: string, key: string): string[] {
  try {
    return JSON.parse(readFileSync(fileOf(workDir, key), 'utf8')) as string[];
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err; // unreadable: the attempt must not stream unmasked
  }
}

export function dropMasks(workDir: string, key: string): void {
  rmSync(fileOf(workDir, key), { force: true });
}

/** Removes the files of attempts no longer on disk (`keep`: the keys of those that are). */
export function sweepMasks(workDir: string, keep: ReadonlySet<string>): void {
  let names: string[];
  try {
    names = readdirSync(join(workDir, DIR));
  } catch {
    return;
  }
  for (const n of names) if (!keep.has(n.replace(/\.json$/, '').replace('.', '/'))) rmSync(join(workDir, DIR, n), { force: true });
}
