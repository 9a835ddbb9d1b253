/**
 * The `runmesh` command tree: client commands here, server/agent/dev from
 * commands/server.ts. The control plane and the agent are imported by the
 * command that runs them, not here: loading the control plane (etcd3, lmdb,
 * prom-client...) is ~0.3 s and ~20 MB, pino ~30 ms, that `runmesh jobs` or an agent on a
 * build host would otherwise pay at every start.
 */
import type { Command } from 'commander';
import { registerAgents } from './commands/agents.js';
import { registerArtifacts } from './commands/artifacts.js';
import { registerCluster } from './commands/cluster.js';
import { registerTokens } from './commands/tokens.js';
import { registerAudit } from './commands/audit.js';
import { registerIdToken } from './commands/id-token.js';
import { registerSecrets } from './commands/secrets.js';
import { registerSchedules } from './commands/schedules.js';
import { registerTemplates } from './commands/templates.js';
import { registerHooks } from './commands/hooks.js';
import { registerJobs } from './commands/jobs.js';
import { registerLogs } from './commands/logs.js';
import { registerServerCommands } from './commands/server.js';
import { registerSubmit } from './commands/submit.js';
import { registerPipelines } from './commands/pipelines.js';
import { completionScript, INSTALL_HELP, SHELLS } from './completion.js';
import { rootCommand } from './root.js';

/**
 * Builds the whole command tree (help, completion and tests). A run loads only
 * its own command: a new top-level command also goes in lazy.ts's
 * COMMAND_MODULES (program.test.ts checks).
 */
export function buildProgram(): Command {
  const program = rootCommand();
  registerSubmit(program);
  registerJobs(program);
  registerPipelines(program);
  registerLogs(program);
  registerArtifacts(program);
  registerAgents(program);
  registerCluster(program);
  registerTokens(program);
  registerAudit(program);
  registerIdToken(program);
  registerSecrets(program);
  registerSchedules(program);
  registerTemplates(program);
  registerHooks(program);
  registerServerCommands(program);
  registerCompletion(program);
  return program;
}

export { reportError } from './report.js';

/** `runmesh completion SHELL`: lives beside buildProgram, whose whole tree it describes. */
export function registerCompletion(program: Command): void {
  program
    .command('completion')
    .description('print a shell completion script (bash, zsh or fish)')
    .argument('<shell>', SHELLS.join('|'))
    .addHelpText('after', INSTALL_HELP)
    .action((shell: string) => {
      // The whole tree, whatever this run loaded: completion covers every command.
      process.stdout.write(completionScript(shell, buildProgram()));
    });
}
