/**
 * `runmesh artifacts ls JOB` and `runmesh artifacts get JOB PATH [-o FILE]`:
 * the files an attempt of a job uploaded (submit --artifacts), through
 * ArtifactService. Inside a pipeline job, `--from NEED` names one of the jobs
 * it needs instead of JOB, and the call goes with the job's own
 * RUNMESH_JOB_TOKEN (to RUNMESH_SERVER, which the agent sets too).
 */
import { Option, type Command } from 'commander';
import type { GetArtifactRequest, GetArtifactResponse, ListArtifactsResponse } from '../../proto/gen/runmesh/v1/artifact.js';
import { destinationFor, fileSink, receiveArtifact, refuseBinaryOnTerminal, stdoutSink } from '../artifact-download.js';
import { type Connection, toRpcError, unary, withConnection } from '../client.js';
import { UsageError } from '../errors.js';
import { humanBytes, printJson, table } from '../format.js';
import { optionalWhole, serverOption, tokenOption, UINT32_MAX, type Target } from '../options.js';

interface ArtifactsOptions {
  server: string;
  token?: string;
  jobToken?: string;
  from?: string;
  attempt?: string;
  json?: boolean;
  output?: string;
}

/** Which job's artifacts: JOB as given, or (`--from`) a need of the calling job. */
interface Which {
  jobId: string;
  fromNeed: string;
  attempt: number;
}

/** How many characters of a sha256 the table shows (as git shows a commit). */
const SHORT_SHA = 12;

export function registerArtifacts(program: Command): void {
  const artifacts = program.command('artifacts').description("list and download a job's artifacts (submit --artifacts)");
  common(artifacts.command('ls'))
    .description('list the files an attempt of a job stored: path, size, sha256')
    .argument('[job]', 'job id (none with --from)')
    .option('--json', 'print {"job_id","attempt","files":[{"path","size","sha256"}],"error"}')
    .action((job: string | undefined, options: ArtifactsOptions) => ls(job, options));
  common(artifacts.command('get'))
    .description('download one artifact to stdout (not binary to a terminal), or to a file (-o), checked against its sha256')
    .argument('[job]', 'job id (none with --from)')
    .argument('[path]', 'the artifact as listed (dist/app.tar)')
    .option(
      '-o, --output <file>',
      'write to this file (kept only once complete and checked); DIR/ or an existing directory: DIR/<basename>',
    )
    .option('--json', 'with -o: print {"path","size","sha256","written"} once written')
    .action((job: string | undefined, path: string | undefined, options: ArtifactsOptions) => get([job, path], options));
}

function common(command: Command): Command {
  return command
    .addOption(serverOption())
    .addOption(tokenOption())
    .option('--from <need>', "inside a pipeline job: a job it needs, by name, read with the job's RUNMESH_JOB_TOKEN")
    .addOption(new Option('--job-token <token>', "with --from: the job's token").env('RUNMESH_JOB_TOKEN'))
    .option('--attempt <n>', 'this attempt (default: the latest that stored artifacts)');
}

/** The positional JOB (absent with --from) and the attempt, checked. */
function which(job: string | undefined, o: ArtifactsOptions): Which {
  const attempt = optionalWhole('--attempt', o.attempt, 1, UINT32_MAX) ?? 0;
  if (o.from !== undefined) {
    if (job !== undefined) throw new UsageError('give a job id or --from NEED, not both');
    if (!o.from.trim()) throw new UsageError('--from: the name of a job this one needs');
    return { jobId: '', fromNeed: o.from.trim(), attempt };
  }
  if (job === undefined) throw new UsageError('a job id is needed (or, inside a pipeline job, --from NEED)');
  return { jobId: job, fromNeed: '', attempt };
}

/** Where the call goes, and with which token: a need's artifacts are read with the job's own token. */
function target(o: ArtifactsOptions): Target {
  if (o.from === undefined) return o;
  const token = o.jobToken ?? o.token;
  if (!token) throw new UsageError('--from runs inside a pipeline job, which has RUNMESH_JOB_TOKEN (none is set)');
  return { server: o.server, token };
}

async function ls(job: string | undefined, o: ArtifactsOptions): Promise<void> {
  const w = which(job, o);
  const res = await withConnection(target(o), (conn) =>
    unary(conn, 'ArtifactService.ListArtifacts', conn.artifacts.listArtifacts.bind(conn.artifacts), w),
  );
  if (o.json) {
    const files = res.files.map((f) => ({ path: f.path, size: Number(f.size), sha256: f.sha256 }));
    printJson({ job_id: res.jobId, attempt: res.attempt, files, error: res.error });
    return;
  }
  process.stdout.write(`${listing(res)}\n`);
}

/** The human listing: which attempt, then its files, or why there are none. */
export function listing(res: ListArtifactsResponse): string {
  if (res.attempt === 0) return `job ${res.jobId}: no artifacts (no attempt stored any)`;
  const head = `job ${res.jobId}, attempt ${res.attempt}`;
  if (res.error) return `${head}: no artifacts: the upload failed: ${res.error}`;
  if (res.files.length === 0) return `${head}: no artifacts (no file matched its globs)`;
  const total = res.files.reduce((sum, f) => sum + f.size, 0n);
  const files = res.files.length === 1 ? '1 file' : `${res.files.length} files`;
  const rows = res.files.map((f) => [f.path, humanBytes(f.size), f.sha256.slice(0, SHORT_SHA)]);
  return `${head}: ${files}, ${humanBytes(total)}\n${table(['PATH', 'SIZE', 'SHA256'], rows)}`;
}

async function get(positional: [string | undefined, string | undefined], o: ArtifactsOptions): Promise<void> {
  const given = positional.filter((a): a is string => a !== undefined);
  // With --from the one positional is the path; without it, JOB then PATH.
  const [job, path] = o.from !== undefined ? [given.length > 1 ? given[0] : undefined, given.at(-1)] : [given[0], given[1]];
  const w = which(job, o);
  if (!path) throw new UsageError('the artifact path is missing (as `runmesh artifacts ls` lists it)');
  if (o.json && (o.output === undefined || o.output === '-')) throw new UsageError('--json goes with -o FILE (stdout holds the bytes)');
  const request: GetArtifactRequest = { ...w, path };
  const toStdout = o.output === undefined || o.output === '-';
  const destination = toStdout ? undefined : await destinationFor(o.output!, path);
  await withConnection(target(o), async (conn) => {
    const sink =
      destination !== undefined
        ? await fileSink(destination)
        : refuseBinaryOnTerminal(stdoutSink, o.output === undefined && process.stdout.isTTY === true);
    const file = await receiveArtifact(artifactStream(conn, request), sink);
    if (o.json) printJson({ path: file.path, size: Number(file.size), sha256: file.sha256, written: destination });
  });
}

/** GetArtifact's messages, with a failure as the CLI reports one; the call is cancelled if the reader stops early. */
async function* artifactStream(conn: Connection, request: GetArtifactRequest): AsyncGenerator<GetArtifactResponse> {
  const call = conn.artifacts.getArtifact(request);
  try {
    for await (const res of call as AsyncIterable<GetArtifactResponse>) yield res;
  } catch (err) {
    throw toRpcError(err, conn.server, 'ArtifactService.GetArtifact');
  } finally {
    call.cancel();
  }
}
