/**
 * `runmesh logs [-f] [--attempt N] [--from SEQ] [--json] ID`: a job's raw
 * output on stdout and stderr, or (`--json`) one JSON object per record on
 * stdout, so a follower can be read line by line.
 */
import type { Command } from 'commander';
import { withConnection } from '../client.js';
import { followAttempt, followJob, jsonSink, type LogSink, printLogs, processSink } from '../follow.js';
import { optionalWhole, serverOption, tokenOption, UINT32_MAX } from '../options.js';

interface LogsOptions {
  server: string;
  follow?: boolean;
  attempt?: string;
  from?: string;
  json?: boolean;
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
    .option(
      '--json',
      'one JSON object per record on stdout: {"attempt","seq","stream","text"} ("base64" instead of "text" for bytes that are not UTF-8)',
    )
    .action((id: string, options: LogsOptions) => logs(id, options));
}

async function logs(id: string, options: LogsOptions): Promise<void> {
  const attempt = optionalWhole('--attempt', options.attempt, 1, UINT32_MAX) ?? 0;
  const cursor = { attempt, nextSeq: optionalWhole('--from', options.from, 0, UINT32_MAX) ?? 0 };
  const sink: LogSink = options.json ? jsonSink : processSink;
  await withConnection(options, async (conn) => {
    if (!options.follow) return printLogs(conn, id, cursor, sink);
    // A named attempt ends with that attempt; the latest one is followed into any retry.
    if (attempt !== 0) return followAttempt(conn, id, cursor, sink);
    await followJob(conn, id, cursor, sink);
  });
}
