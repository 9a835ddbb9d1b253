/**
 * Entry point of the `runmesh` command (bin/runmesh.js imports the compiled
 * file). Parses argv, runs the command, and ends with one `runmesh: <message>`
 * line on stderr for any failure; stack traces only with RUNMESH_DEBUG=1.
 */
import { CommanderError } from 'commander';
import { programFor } from './lazy.js';
import { handleClosedPipes } from './pipes.js';

async function main(argv: readonly string[]): Promise<void> {
  try {
    await (await programFor(argv)).parseAsync([...argv]);
  } catch (err) {
    // --version and --help end this way: nothing to report, and no reason to load the error module (and grpc-js).
    if (err instanceof CommanderError && err.exitCode === 0) return;
    const { reportError } = await import('./report.js');
    const report = reportError(err);
    if (report.line !== undefined) process.stderr.write(`runmesh: ${report.line}\n`);
    if (process.env.RUNMESH_DEBUG === '1' && err instanceof Error) process.stderr.write(`${err.stack ?? ''}\n`);
    // exitCode, not exit(): let stdout drain; every command has closed its gRPC channel by now.
    process.exitCode = report.exitCode;
  }
}

handleClosedPipes();
await main(process.argv);
