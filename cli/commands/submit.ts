/** `runmesh submit`: build a JobSpec from flags and argv, submit it, optionally wait for the outcome. */
import type { Command } from 'commander';
import { Job } from '../../proto/gen/runmesh/v1/job.js';
import { type Connection, unary, withConnection } from '../client.js';
import { UsageError } from '../errors.js';
import { followJob, processSink } from '../follow.js';
import { printJson } from '../format.js';
import { collect, serverOption, tokenOption } from '../options.js';
import { EXIT, settle } from '../outcome.js';
import { buildSpec, type SubmitFlags } from '../spec.js';
import { readFileSync } from 'node:fs';
import type { JobSpec } from '../../proto/gen/runmesh/v1/job.js';
import { signingKeyOf, signSpec } from '../../proto/job-signature.js';
import { validateSpec } from '../../control-plane/jobs/validate.js';

interface SubmitOptions extends SubmitFlags {
  server: string;
  wait?: boolean;
  json?: boolean;
  signKey?: string;
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
    .option(
      '--wait',
      "stream the output and exit with the job's exit code; a job that did not exit by itself: " +
        `${EXIT.timedOut} timed out, ${EXIT.cancelled} cancelled, ${EXIT.outOfMemory} out of memory, ` +
        `${EXIT.notRunnable} not runnable (program missing or not executable, or its signature not trusted), ` +
        `${EXIT.couldNotRun} the mesh could not run it (could not start, agent lost, disk full)`,
    )
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
    .option('--secret <NAME[=ENVVAR]>', "a secret of the job's tenant as an environment variable (NAME, or ENVVAR) (repeatable)", collect)
    .option('--secret-file <NAME=path>', "a secret of the job's tenant as a file at path in the workspace, mode 0600 (repeatable)", collect)
    .option('--json', 'print the submitted job as JSON')
    .option('--sign-key <file>', 'sign the job with this Ed25519 private key (PEM or JWK), for agents that run only signed jobs')
    .action((command: string[], options: SubmitOptions) => submit(command, options));
}

async function submit(command: string[], options: SubmitOptions): Promise<void> {
  const spec = options.signKey ? signed(buildSpec(options, command), options.signKey) : buildSpec(options, command);
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

/**
 * The spec resolved exactly as the control plane resolves it at submit (the
 * same validateSpec), then signed: storing it changes nothing the signature
 * covers. Its tenant is signed too, so it must be the one the control plane
 * would pick ("default" unless --tenant names another).
 */
function signed(spec: JobSpec, keyFile: string): JobSpec {
  let signer: ReturnType<typeof signingKeyOf>;
  try {
    signer = signingKeyOf(readFileSync(keyFile, 'utf8'));
  } catch (err) {
    throw new UsageError(`--sign-key ${keyFile}: ${(err as Error).message}`);
  }
  return signSpec(validateSpec(spec, 'spec'), signer);
}

// stdout and stderr carry the job's own output only; the outcome is the exit code (and one line if it did not exit).
async function wait(conn: Connection, job: Job): Promise<void> {
  const final = await followJob(conn, job.id, { attempt: 0, nextSeq: 0 }, processSink);
  settle(final);
}
