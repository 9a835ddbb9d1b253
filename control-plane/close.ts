/** Ordered shutdown: every step runs even if an earlier one throws; failures are logged, not thrown. */
import type { Logger } from 'pino';

/** A named step of a shutdown; it may return a promise or nothing. */
export type CloseStep = readonly [name: string, run: () => unknown];

/** Runs `steps` one after another; `what` names the part being closed in the warning a failed step logs. */
export async function closeInOrder(log: Logger, what: string, steps: readonly CloseStep[]): Promise<void> {
  for (const [name, run] of steps) {
    try {
      await run();
    } catch (err) {
      log.warn({ err, step: name, part: what }, 'shutdown step failed');
    }
  }
}
