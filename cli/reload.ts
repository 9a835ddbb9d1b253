/**
 * SIGHUP for the long-running commands (`server`, `agent`). runmesh's
 * convention is that SIGHUP reloads what can change live (systemd's
 * ExecReload sends it); nothing can yet, so it is logged and the process runs
 * on. Node's default for SIGHUP is to end the process at once, skipping every
 * clean-up: the WebSocket tunnel's and bridge's socket directories stayed
 * behind, and an agent stopped taking work without draining.
 */
import type { Logger } from 'pino';

/** Handles SIGHUP until the returned function is called. */
export function onHangup(log: Logger): () => void {
  const on = (): void => log.info('SIGHUP: nothing to reload; still running');
  process.on('SIGHUP', on);
  return () => void process.off('SIGHUP', on);
}
