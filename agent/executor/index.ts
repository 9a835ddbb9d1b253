/** agent/executor/: runs attempts as supervised process groups with an on-disk spool. */
import type { Logger } from 'pino';
import type { Executor } from './executor.js';
import { LocalExecutor } from './local.js';

export * from './executor.js';

export function createExecutor(options: { workDir: string; logger: Logger }): Executor {
  return new LocalExecutor(options.workDir, options.logger);
}
