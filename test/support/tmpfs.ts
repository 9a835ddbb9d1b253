/**
 * A small real filesystem that fills up: tmpfs mounts for full-disk tests.
 * Mounting needs root (CI runs as root); `tmpfsSupport` says whether this
 * host allows it, so a test can skip with the reason in its name.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function mountCmd(args: string[]): { ok: boolean; why: string } {
  const r = spawnSync('mount', args, { encoding: 'utf8' });
  return { ok: r.status === 0, why: (r.stderr || r.error?.message || `exit ${r.status}`).trim() };
}

/** '' when tmpfs can be mounted here; else why not. Probed once, synchronously (test names are built at collection). */
export const tmpfsUnavailable: string = (() => {
  const dir = mkdtempSync(join(tmpdir(), 'runmesh-tmpfs-probe-'));
  try {
    const m = mountCmd(['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir]);
    if (!m.ok) return `mount not permitted: ${m.why}`;
    spawnSync('umount', [dir]);
    return '';
  } finally {
    rmdirSync(dir);
  }
})();

const mounted = new Set<string>();

/** Mounts a tmpfs of `size` (e.g. "2m") at `dir`, creating it. */
export function mountTmpfs(dir: string, size: string): void {
  mkdirSync(dir, { recursive: true });
  const m = mountCmd(['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  if (!m.ok) throw new Error(`cannot mount tmpfs at ${dir}: ${m.why}`);
  mounted.add(dir);
}

/** Unmounts every tmpfs mounted here (lazily, so a process still inside cannot keep it). */
export function unmountAll(): void {
  for (const dir of mounted) spawnSync('umount', ['-l', dir]);
  mounted.clear();
}

/** Fills the filesystem holding `dir` with `file` until it has no space left. */
export function fill(file: string): void {
  spawnSync('dd', ['if=/dev/zero', `of=${file}`, 'bs=4k'], { stdio: 'ignore' });
}
