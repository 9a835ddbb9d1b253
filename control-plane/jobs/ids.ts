/** Job ids: `j_` + time-sortable base36 + randomness, so key order is submission order. */
import { randomBytes } from 'node:crypto';

let lastMs = 0;
let counter = 0;

export function newJobId(now = Date.now()): string {
  if (now === lastMs) counter++;
  else {
    lastMs = now;
    counter = 0;
  }
  const time = now.toString(36).padStart(9, '0');
  const seq = counter.toString(36).padStart(4, '0');
  return `j_${time}${seq}${randomBytes(4).toString('hex')}`;
}
