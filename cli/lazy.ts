/**
 * Which part of the command tree a run needs. `runmesh jobs ls` loads the
 * jobs commands (commander, grpc-js, the job messages) and nothing else: not
 * the other client commands, not the server or the agent. Help, completion,
 * `help` and a command this table does not know load the whole tree
 * (program.ts), so a command missing here is slower, never wrong; a test
 * checks that the table names every command.
 */
import type { Command } from 'commander';
import { rootCommand } from './root.js';

type Register = (program: Command) => void;

/** Top-level command names and the function that registers them, loaded on demand. */
export const COMMAND_MODULES: readonly (readonly [names: readonly string[], load: () => Promise<Register>])[] = [
  [['submit'], async () => (await import('./commands/submit.js')).registerSubmit],
  [['jobs'], async () => (await import('./commands/jobs.js')).registerJobs],
  [['pipelines'], async () => (await import('./commands/pipelines.js')).registerPipelines],
  [['logs'], async () => (await import('./commands/logs.js')).registerLogs],
  [['artifacts'], async () => (await import('./commands/artifacts.js')).registerArtifacts],
  [['agents'], async () => (await import('./commands/agents.js')).registerAgents],
  [['cluster'], async () => (await import('./commands/cluster.js')).registerCluster],
  [['tokens'], async () => (await import('./commands/tokens.js')).registerTokens],
  [['audit'], async () => (await import('./commands/audit.js')).registerAudit],
  [['id-token'], async () => (await import('./commands/id-token.js')).registerIdToken],
  [['secrets'], async () => (await import('./commands/secrets.js')).registerSecrets],
  [['schedules'], async () => (await import('./commands/schedules.js')).registerSchedules],
  [['templates'], async () => (await import('./commands/templates.js')).registerTemplates],
  [['hooks'], async () => (await import('./commands/hooks.js')).registerHooks],
  [['server', 'agent', 'dev'], async () => (await import('./commands/server.js')).registerServerCommands],
  [['completion'], async () => (await import('./program.js')).registerCompletion],
];

/** The program for `argv` (as process.argv: node, script, args...), with only the commands it runs. */
export async function programFor(argv: readonly string[]): Promise<Command> {
  const args = argv.slice(2);
  if (args.length === 1 && args[0] === '--version') return rootCommand();
  // A root option before the command (`runmesh -h jobs`) is help about the whole tree.
  const first = args[0]?.startsWith('-') ? undefined : args[0];
  const entry = first === undefined ? undefined : COMMAND_MODULES.find(([names]) => names.includes(first));
  if (!entry) return (await import('./program.js')).buildProgram();
  const program = rootCommand();
  (await entry[1]())(program);
  return program;
}
