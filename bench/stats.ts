/** Small figures helpers for benchmarks. */
import { readFileSync } from 'node:fs';

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

export function summarize(samplesMs: number[]): { p50: number; p99: number; n: number } {
  const s = [...samplesMs].sort((a, b) => a - b);
  return { p50: round(percentile(s, 50)), p99: round(percentile(s, 99)), n: s.length };
}

export const round = (x: number, digits = 2): number => Math.round(x * 10 ** digits) / 10 ** digits;

export const ms = (from: bigint, to: bigint): number => Number(to - from) / 1e6;

export function rssMb(pid: number | 'self' = 'self'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = status.match(/VmRSS:\s+(\d+) kB/);
  return m ? round(Number(m[1]) / 1024, 1) : NaN;
}

/**
 * Memory only this process holds (private pages, from smaps_rollup): what
 * one more process of the same kind costs. RSS also counts the Node binary's
 * pages, which every Node process on the host shares (~33 MB here).
 */
export function privateMb(pid: number | 'self' = 'self'): number {
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = [...rollup.matchAll(/^Private_(?:Clean|Dirty):\s+(\d+) kB/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
  return round(kb / 1024, 1);
}

export function line(label: string, figures: Record<string, number | string>): void {
  const parts = Object.entries(figures).map(([k, v]) => `${k}=${v}`);
  process.stdout.write(`${label.padEnd(44)} ${parts.join('  ')}\n`);
}

/** CPU seconds a process has used so far (user + system), from /proc. */
export function cpuSeconds(pid: number | 'self' = 'self'): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

/**
 * CPU seconds the whole machine has been busy so far (every process, user +
 * system + interrupts), from /proc/stat: what a job costs a host, supervisors
 * and short-lived processes included.
 */
export function hostBusySeconds(): number {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0] = cpu;
  return (user + nice + system + irq + softirq) / 100; // USER_HZ = 100
}
