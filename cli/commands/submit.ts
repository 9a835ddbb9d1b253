/** `runmesh submit`: build a JobSpec from flags and argv, submit it, optionally wait for the outcome. */
import type { Command } from 'commander';
import { Job } from '../../proto/gen/runmesh/v1/job.js';
import { type Connection, unary, withConnection } from '../client.js';
import { UsageError } from '../errors.js';
import { followJob, type LogSink, processSink } from '../follow.js';
import { printJson } from '../format.js';
import { collect, serverOption, tokenOption } from '../options.js';
import { EXIT, settle } from '../outcome.js';
import { buildSpec, jobOptions, paramsOf, type SubmitFlags } from '../spec.js';
import { startSpinner } from '../spinner.js';
import { readFileSync } from 'node:fs';
import type { JobSpec } from '../../proto/gen/runmesh/v1/job.js';
import { signingKeyOf, signSpec } from '../../proto/job-signature.js';
import { validateSpec } from '../../control-plane/jobs/validate.js';
import { traceMetadataFromEnv } from '../../transport/tracing/carrier.js';
import { submitFile } from './pipelines.js';

interface SubmitOptions extends SubmitFlags {
  template?: string;
  param?: string[];
  server: string;
  wait?: boolean;
  json?: boolean;
  signKey?: string;
  file?: string;
}

export function registerSubmit(program: Command): void {
  const cmd = program
    .command('submit')
    .description('submit a job: runmesh submit [flags] -- CMD ARGS...')
    .argument('[command...]', 'program and arguments to run (after --)')
    .addOption(serverOption())
    .addOption(tokenOption());
  jobOptions(cmd)
    .option(
      '--wait',
      "stream the output and exit with the job's exit code; a job that did not exit by itself: " +
        `${EXIT.timedOut} timed out, ${EXIT.cancelled} cancelled, ${EXIT.outOfMemory} out of memory, ` +
        `${EXIT.notRunnable} not runnable (program missing or not executable, or its signature not trusted), ` +
        `${EXIT.couldNotRun} the mesh could not run it (could not start, agent lost, disk full)`,
    )
    .option('--idempotency-key <key>', 'a second submit with the same key returns the first job')
    .option('--template <name>', 'submit a stored template (runmesh templates create), filled in on the server with --param')
    .option('--param <k=v>', "a template parameter's value (repeatable)", collect)
    .option('-f, --file <file>', 'submit the jobs of a pipeline file (YAML: jobs, needs, matrix...; README "Pipelines"), or a one-job file')
    .option('--json', 'print the submitted job as JSON')
    .option('--sign-key <file>', 'sign the job with this Ed25519 private key (PEM or JWK), for agents that run only signed jobs')
    .action((command: string[], options: SubmitOptions) => submit(command, options));
}

async function submit(command: string[], options: SubmitOptions): Promise<void> {
  if (options.file !== undefined) {
    const key = options.signKey;
    return submitFile(command, { ...options, file: options.file }, (s) => (key ? signed(s, key) : s), wait);
  }
  if (options.template !== undefined) return submitTemplate(command, options);
  if (options.param) throw new UsageError('--param goes with --template');
  const spec = options.signKey ? signed(buildSpec(options, command), options.signKey) : buildSpec(options, command);
  if (options.wait && options.json) {
    throw new UsageError("--json and --wait do not mix: with --wait, stdout carries the job's output");
  }
  await withConnection(options, async (conn) => {
    // Inside a job (or any traced caller), TRACEPARENT makes this job part of that trace.
    const res = await unary(conn, 'JobService.Submit', conn.jobs.submit.bind(conn.jobs), { spec }, traceMetadataFromEnv(process.env));
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
// Until the first output, a terminal shows a spinner on stderr (spinner.ts), wiped before that output.
async function wait(conn: Connection, job: Job): Promise<void> {
  const spinner = startSpinner(`waiting for ${job.id}`);
  const sink: LogSink = {
    write(stream, data, record) {
      spinner.stop();
      processSink.write(stream, data, record);
    },
  };
  try {
    settle(await followJob(conn, job.id, { attempt: 0, nextSeq: 0 }, sink));
  } finally {
    spinner.stop();
  }
}

/** `--template NAME --param k=v`: the server fills the template in and submits what it makes (one job, or a pipeline). */
async function submitTemplate(command: string[], options: SubmitOptions): Promise<void> {
  if (command.length > 0 || options.script !== undefined)
    throw new UsageError('--template gives the command: no command after -- and no --script');
  if (options.signKey) throw new UsageError('--sign-key cannot sign a template: the server fills it in');
  const params = paramsOf(options.param ?? []);
  await withConnection(options, async (conn) => {
    const res = await unary(conn, 'TemplateService.SubmitTemplate', conn.templates.submitTemplate.bind(conn.templates), {
      name: options.template ?? '',
      tenant: options.tenant ?? '',
      params,
    });
    const first = res.jobs[0];
    if (options.wait && res.jobs.length === 1 && first) return wait(conn, first);
    if (options.wait) throw new UsageError(`--wait follows one job; template ${options.template} made ${res.jobs.length}`);
    if (options.json) printJson(res.jobs.map((j) => Job.toJSON(j)));
    else process.stdout.write(res.jobs.map((j) => `${j.id}\n`).join(''));
  });
}
