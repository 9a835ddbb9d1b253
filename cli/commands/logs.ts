/** `runmesh logs [-f] [--attempt N] [--from SEQ] ID`: a job's raw output on stdout and stderr. */
import type { Command } from 'commander';
import { withConnection } from '../client.js';
import { followAttempt, followJob, printLogs, processSink } from '../follow.js';
import { optionalWhole, serverOption, tokenOption, UINT32_MAX } from '../options.js';

interface LogsOptions {
  server: string;
  follow?: boolean;
  attempt?: string;
  from?: string;
}

export function registerLogs(program: Command): void {
  program
    .command('logs')
    .description("print a job's output (stdout and stderr as the job wrote them)")
    .argument('<id>', 'job id')
    .addOption(serverOption())
    .addOption(tokenOption())
    .option('-f, --follow', 'keep streaming until the job ends, through retries')
    .option('--attempt <n>', 'read this attempt (default: the latest)')
    .option('--from <seq>', 'start at this record')
    .action((id: string, options: LogsOptions) => logs(id, options));
}

async function logs(id: string, options: LogsOptions): Promise<void> {
  const attempt = optionalWhole('--attempt', options.attempt, 1, UINT32_MAX) ?? 0;
  const cursor = { attempt, nextSeq: optionalWhole('--from', options.from, 0, UINT32_MAX) ?? 0 };
  await withConnection(options, async (conn) => {
    if (!options.follow) return printLogs(conn, id, cursor, processSink);
    // A named attempt ends with that attempt; the latest one is followed into any retry.
    if (attempt !== 0) return followAttempt(conn, id, cursor, processSink);
    await followJob(conn, id, cursor, processSink);
  });
}
