/** The process logger: JSON lines (pino) on stderr, so stdout stays for command output. */
import { pino, type Logger } from 'pino';

export function createLogger(level = process.env.RUNMESH_LOG_LEVEL ?? 'info', name = 'runmesh'): Logger {
  return pino({ name, level }, pino.destination({ fd: 2, sync: false }));
}
