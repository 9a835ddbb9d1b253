/**
 * The `runmesh` root command, before any subcommand is added. Kept apart from
 * the command tree so the entry point loads only the command being run
 * (lazy.ts); `runmesh --version` loads commander and nothing else.
 */
import { Command } from 'commander';
import { VERSION } from '../proto/version.js';

/**
 * Commander never exits the process or prints its own errors: it throws a
 * CommanderError, which report.ts turns into one `runmesh:` line and
 * exit code 2. Subcommands inherit this because they are created with
 * `.command()` after it is configured.
 */
export function rootCommand(): Command {
  return new Command('runmesh')
    .description('runner-agent mesh: submit jobs, follow their output, operate the cluster')
    .version(VERSION, '--version', 'print the runmesh version')
    .exitOverride()
    .configureOutput({ outputError: () => undefined });
}
