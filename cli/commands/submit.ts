/** `runmesh submit`: build a JobSpec from flags and argv, submit it, optionally wait for the outcome. */
import type { Command } from 'commander';
import { Job } from '../../proto/gen/runmesh/v1/job.js';
import { type Connection, unary, withConnection } from '../client.js';
import { UsageError } from '../errors.js';
import { followJob, processSink } from '../follow.js';
import { printJson } from '../format.js';
import { collect, serverOption, tokenOption } from '../options.js';
import { settle } from '../outcome.js';
import { buildSpec, type SubmitFlags } from '../spec.js';

interface SubmitOptions extends SubmitFlags {
  server: string;
  wait?: boolean;
  json?: boolean;
}

export function registerSubmit(program: Command): void {
  program
    .command('submit')
    .description('submit a job: runmesh submit [flags] -- CMD ARGS...')
    .argument('[command...]', 'program and arguments to run (after --)')
    .addOption(serverOption())
    .addOption(tokenOption())
    .option('--name <name>', 'job name shown in tables')
    .option('--label <k=v>', 'require an agent label (repeatable)', collect)
    .option('--env <K=V>', 'environment variable for the job (repeatable)', collect)
    .option('--timeout <duration>', 'wall-clock limit per attempt: 30s, 5m, 1h30m, or seconds')
    .option('--retries <n>', 'retries after a failed attempt (attempts = n + 1)')
    .option('--wait', "stream the output and exit with the job's exit code")
    .option('--script <text>', 'shell script to run with sh -e -c instead of a command')
    .option('--idempotency-key <key>', 'a second submit with the same key returns the first job')
    .option('--selector <expr>', 'label selector, e.g. "os=linux,arch in (amd64,arm64)"')
    .option('--qos <class>', 'critical | standard | batch')
    .option('--tenant <tenant>', 'tenant for fair sharing')
    .option('--priority <n>', 'higher runs first within a tenant and QoS class')
    .option('--affinity <key>', 'jobs with the same key prefer the same agent')
    .option('--strategy <name>', 'spread | binpack')
    .option('--slots <n>', 'slots needed')
    .option('--cpu <millis>', 'CPU needed, in millicores; also its limit: at most this much CPU time per second (1000 = one core)')
    .option('--memory <mb>', 'memory needed, in MB; also its hard limit: over it the job is killed (out of memory)')
    .option('--executor <name>', 'shell (default: a process on the agent) | sandbox (under bubblewrap, only on agents that offer it)')
    .option('--no-network', 'sandbox only: the job gets no network at all')
    .option('--json', 'print the submitted job as JSON')
    .action((command: string[], options: SubmitOptions) => submit(command, options));
}

async function submit(command: string[], options: SubmitOptions): Promise<void> {
  const spec = buildSpec(options, command);
  if (options.wait && options.json) {
    throw new UsageError("--json and --wait do not mix: with --wait, stdout carries the job's output");
  }
  await withConnection(options, async (conn) => {
    const res = await unary(conn, 'JobService.Submit', conn.jobs.submit.bind(conn.jobs), { spec });
    if (!res.job) throw new Error('JobService.Submit returned no job');
    if (options.wait) return wait(conn, res.job);
    if (options.json) printJson(Job.toJSON(res.job));
    else process.stdout.write(`${res.job.id}\n`);
  });
}

// stdout and stderr carry the job's own output only; the outcome is the exit code (and one line if it did not exit).
async function wait(conn: Connection, job: Job): Promise<void> {
  const final = await followJob(conn, job.id, { attempt: 0, nextSeq: 0 }, processSink);
  settle(final);
}
