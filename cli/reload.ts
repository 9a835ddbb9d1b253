/**
 * SIGHUP for the long-running commands. For `server` and `agent` runmesh's
 * convention is that SIGHUP reloads what can change live (systemd's
 * ExecReload sends it); nothing can yet, so it is logged and the process runs
 * on (`onHangup`). `runmesh dev` belongs to the terminal it was started in,
 * where SIGHUP means the terminal went away: it stops as on Ctrl-C
 * (`untilHangup`). Either way SIGHUP no longer takes Node's default, which
 * ends the process at once and skips every clean-up: the WebSocket tunnel's
 * and bridge's socket directories stayed behind, and an agent stopped taking
 * work without draining.
 */
import type { Logger } from 'pino';

/** Resolves on the first SIGHUP, and handles every later one (a second SIGHUP while stopping must not end the process uncleanly). */
export function untilHangup(): Promise<'SIGHUP'> {
  return new Promise((resolve) => process.on('SIGHUP', () => resolve('SIGHUP')));
}

/** Handles SIGHUP until the returned function is called. */
export function onHangup(log: Logger): () => void {
  const on = (): void => log.info('SIGHUP: nothing to reload; still running');
  process.on('SIGHUP', on);
  return () => void process.off('SIGHUP', on);
}
