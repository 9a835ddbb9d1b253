/** Job ids: `j_` + time-sortable base36 + randomness, so key order is submission order. */
import { randomFillSync } from 'node:crypto';

let lastMs = 0;
let counter = 0;
/** Random bytes drawn 4 KiB at a time: one system call per thousand ids instead of one each. */
const pool = Buffer.alloc(4096);
let poolAt = pool.length;

function random4(): string {
  if (poolAt + 4 > pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  poolAt += 4;
  return pool.toString('hex', poolAt - 4, poolAt);
}

/** The id prefix for a submission time: ids made at or after `ms` sort above it, ids made before sort below. */
export function idBoundAt(ms: number): string {
  return `j_${Math.max(0, Math.floor(ms)).toString(36).padStart(9, '0')}`;
}

export function newJobId(now = Date.now()): string {
  if (now === lastMs) counter++;
  else {
    lastMs = now;
    counter = 0;
  }
  const time = idBoundAt(now).slice(2);
  const seq = counter.toString(36).padStart(4, '0');
  return `j_${time}${seq}${random4()}`;
}

/** When the job with this id was submitted (ms since the epoch), read back from the id; undefined for an id not made by `newJobId`. */
export function jobIdTime(id: string): number | undefined {
  const m = /^j_([0-9a-z]{9})[0-9a-z]{4}[0-9a-f]{8}$/.exec(id);
  return m?.[1] ? parseInt(m[1], 36) : undefined;
}
