/**
 * The `runmesh` command tree: client commands here, server/agent/dev from
 * commands/server.ts. The control plane and the agent are imported by the
 * command that runs them, not here: loading the control plane (etcd3, lmdb,
 * prom-client...) is ~0.3 s and ~20 MB, pino ~30 ms, that `runmesh jobs` or an agent on a
 * build host would otherwise pay at every start.
 */
import { Command, CommanderError } from 'commander';
import { registerAgents } from './commands/agents.js';
import { registerCluster } from './commands/cluster.js';
import { registerTokens } from './commands/tokens.js';
import { registerAudit } from './commands/audit.js';
import { registerIdToken } from './commands/id-token.js';
import { registerSecrets } from './commands/secrets.js';
import { registerJobs } from './commands/jobs.js';
import { registerLogs } from './commands/logs.js';
import { registerServerCommands } from './commands/server.js';
import { registerSubmit } from './commands/submit.js';
import { type ErrorReport, reportFor } from './errors.js';
import { VERSION } from '../proto/version.js';

/**
 * Builds the whole command tree. Commander never exits the process or prints
 * its own errors: it throws a CommanderError, which {@link reportCommanderError}
 * turns into one `runmesh:` line and exit code 2. Subcommands inherit this
 * because they are created with `.command()` after it is configured.
 */
export function buildProgram(): Command {
  const program = new Command('runmesh')
    .description('runner-agent mesh: submit jobs, follow their output, operate the cluster')
    .version(VERSION, '--version', 'print the runmesh version')
    .exitOverride()
    .configureOutput({ outputError: () => undefined });
  registerSubmit(program);
  registerJobs(program);
  registerLogs(program);
  registerAgents(program);
  registerCluster(program);
  registerTokens(program);
  registerAudit(program);
  registerIdToken(program);
  registerSecrets(program);
  registerServerCommands(program);
  return program;
}

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
