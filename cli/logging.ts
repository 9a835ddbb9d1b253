/** The process logger: JSON lines (pino) on stderr, so stdout stays for command output. */
import { pino, type Logger } from 'pino';
import { logLevel } from './flags.js';

export function createLogger(level = process.env.RUNMESH_LOG_LEVEL ?? 'info', name = 'runmesh'): Logger {
  return pino({ name, level: logLevel(level, '--log-level (or RUNMESH_LOG_LEVEL)') }, pino.destination({ fd: 2, sync: false }));
}
