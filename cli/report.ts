/** How an error of any command becomes one `runmesh:` line and an exit code (loaded only when one happens). */
import { CommanderError } from 'commander';
import { type ErrorReport, reportFor } from './errors.js';

/** Exit code and line for any error, including commander's own (usage: 2; help and version: 0). */
export function reportError(err: unknown): ErrorReport {
  if (err instanceof CommanderError) return reportCommanderError(err);
  return reportFor(err);
}

function reportCommanderError(err: CommanderError): ErrorReport {
  if (err.exitCode === 0) return { exitCode: 0, line: undefined };
  // Help already went to stderr (e.g. `runmesh jobs` without a subcommand); a second line would only repeat it.
  if (err.code === 'commander.help') return { exitCode: 2, line: undefined };
  const line = err.message
    .replace(/^error:\s*/, '')
    .replace(/\s*\n\s*/g, ' ')
    .trim();
  return { exitCode: 2, line };
}
