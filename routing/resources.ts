/**
 * Resource arithmetic over the three tracked dimensions. A 0 in an agent's
 * capacity means the agent does not report that dimension: it never limits.
 * A 0 in a job's need means it asks for none of it.
 */
import type { Resources } from './types.js';

/** A job's need with slots normalised to at least one. */
export const needOf = (r: Resources): Resources => (r.slots >= 1 ? r : { slots: 1, cpuMillis: r.cpuMillis, memoryMb: r.memoryMb });

/** True when `need` fits in `free` on an agent whose capacity is `cap` (0 = untracked dimension). */
export function fitsIn(need: Resources, free: Resources, cap: Resources): boolean {
  return (
    need.slots <= free.slots &&
    (need.cpuMillis === 0 || cap.cpuMillis === 0 || need.cpuMillis <= free.cpuMillis) &&
    (need.memoryMb === 0 || cap.memoryMb === 0 || need.memoryMb <= free.memoryMb)
  );
}

/** True when `need` could ever fit on an agent of capacity `cap`. */
export const withinCapacity = (need: Resources, cap: Resources): boolean => fitsIn(need, cap, cap);

/** True when `a` asks for at least as much as `b` in every dimension. */
export const dominates = (a: Resources, b: Resources): boolean =>
  a.slots >= b.slots && a.cpuMillis >= b.cpuMillis && a.memoryMb >= b.memoryMb;
