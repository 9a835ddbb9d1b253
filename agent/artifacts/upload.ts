/**
 * Uploads an attempt's artifacts after it exited and before its result
 * (proto: AgentService.BeginArtifacts): names every file and learns what the
 * peer holds of each (a restarted agent resumes there), sends each file's
 * bytes from that offset, then commits. What a failure means is decided in
 * one place (`nextStep`):
 * - the attempt is no longer this agent's (FAILED_PRECONDITION on Begin):
 *   given up quietly, the control plane ignores the result anyway;
 * - a limit or a bad manifest (RESOURCE_EXHAUSTED, INVALID_ARGUMENT...): the
 *   peer's message is the attempt's artifacts error;
 * - a checksum mismatch (DATA_LOSS): the files are read again and sent once
 *   more, then it is an error;
 * - a connection that dropped: Begin again on the next one, uncounted;
 * - anything else (UNAVAILABLE on a live connection, an offset the peer did
 *   not expect...): Begin again after a backoff, at most MAX_TRIES times.
 */
import { once } from 'node:events';
import { status, type Metadata, type ServiceError } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  BeginArtifactsRequest,
  type BeginArtifactsResponse,
  type CommitArtifactsResponse,
  type UploadArtifactResponse,
} from '../../proto/gen/runmesh/v1/agent.js';
import type { ArtifactFile } from '../../proto/gen/runmesh/v1/artifact.js';
import { NamedError } from '../../proto/cause.js';
import { ARTIFACT_MANIFEST_BYTES, ARTIFACTS_FEATURE } from '../../proto/protocol.js';
import { Backoff, delay, statusCode } from '../../transport/index.js';
import type { Link } from '../session/link.js';
import { ArtifactsError, isArtifactsError } from './errors.js';
import { describeArtifact, findArtifacts, openArtifact, realRoot, type FoundFile } from './find.js';
import type { ArtifactPlan } from './plan.js';

/** The wire's chunk size (UploadArtifactRequest.data). */
export const CHUNK_BYTES = 256 * 1024;
/** Begins after a failure that was not the connection going, before the upload's error is the peer's last one. */
export const MAX_TRIES = 6;
const RETRY = { baseMs: 500, capMs: 15_000 };
const BEGIN_DEADLINE_MS = 60_000;
/** A commit copies the files to a second peer, which may take the peer up to 30 minutes (control-plane/mesh/artifact-copies.ts). */
const COMMIT_DEADLINE_MS = 31 * 60_000;

/** What the uploader needs of the agent. */
export interface UploadLinks {
  /** The live connection, now or once the next one is welcomed; rejects when `signal` aborts. */
  live(signal: AbortSignal): Promise<Link>;
  /** What every upload call carries: the agent's name and credential (they change on enrolment and rotation). */
  metadata(): Metadata;
}

export interface UploadRequest {
  readonly jobId: string;
  readonly attempt: number;
  /** The attempt's workspace (`<attempt dir>/work`). */
  readonly workspace: string;
  readonly plan: ArtifactPlan;
  readonly links: UploadLinks;
  /** The attempt's logger. */
  readonly log: Logger;
  /** The agent stopping, or the attempt dropped: the upload ends without a verdict. */
  readonly signal: AbortSignal;
}

/** How an upload ended: `error` is '' once the files are stored (or the attempt is no longer this agent's). */
export interface UploadOutcome {
  /** Why the files are not stored: the attempt's artifacts error. */
  error: string;
  /** No file matched the globs: nothing to upload (not an error). */
  unmatched: boolean;
}

/** Uploads the plan's files. Never rejects. */
export async function uploadArtifacts(r: UploadRequest): Promise<UploadOutcome> {
  try {
    return { error: await upload(r), unmatched: false };
  } catch (err) {
    if (r.signal.aborted) return { error: '', unmatched: false };
    if (err instanceof NothingMatched) return { error: '', unmatched: true };
    if (isArtifactsError(err)) {
      r.log.warn({ err: (err as Error).message }, 'artifacts not stored');
      return { error: (err as Error).message, unmatched: false };
    }
    r.log.error({ err }, 'artifacts not stored');
    return { error: `not stored: ${(err as Error).message}`, unmatched: false };
  }
}

/** No file matched the plan's globs. */
class NothingMatched extends NamedError {}

async function upload(r: UploadRequest): Promise<string> {
  const root = await realRoot(r.workspace).catch((err: unknown) => {
    throw new ArtifactsError(`the workspace is gone (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`, { cause: err });
  });
  const paths = await findArtifacts(root, r.plan.globs, r.log, r.plan.withheld);
  if (paths.length === 0) {
    r.log.warn({ globs: r.plan.globs }, 'no file matches the artifact globs: nothing to upload');
    throw new NothingMatched('no file matches the artifact globs');
  }
  let files = await describeAll(root, paths);
  checkManifest(r, files);
  const backoff = new Backoff(RETRY);
  let tries = 0;
  let rereads = 0;
  for (;;) {
    const link = await r.links.live(r.signal);
    if (!link.features?.has(ARTIFACTS_FEATURE))
      throw new ArtifactsError('not stored: the control plane predates artifacts (it does not accept the upload calls)');
    try {
      await session(r, link, root, files);
      return '';
    } catch (err) {
      if (r.signal.aborted) throw err;
      const step = nextStep(err);
      const fields = { err: messageOf(err), code: statusCode(err), step: (err as Partial<StepError>).step };
      if (step === 'gone') {
        r.log.info(fields, 'the attempt is no longer assigned here: its artifacts are not uploaded');
        return '';
      }
      if (step === 'refused') throw new ArtifactsError(messageOf(err), { cause: err });
      if (step === 'reread') {
        if (++rereads > 1) throw new ArtifactsError(`${messageOf(err)} (twice: the file changes as it is read?)`, { cause: err });
        r.log.warn(fields, 'artifact checksum mismatch: reading the files again');
        files = await describeAll(root, paths);
        continue;
      }
      await delay(backoff.next(), r.signal);
      if (link.signal.aborted) {
        r.log.info(fields, 'connection lost during the artifact upload: resuming on the next one');
        continue;
      }
      if (++tries >= MAX_TRIES) throw new ArtifactsError(`not stored after ${tries} tries: ${messageOf(err)}`, { cause: err });
      r.log.warn({ ...fields, tries }, 'artifact upload failed: beginning again');
    }
  }
}

/** Refuses, naming the sizes, a manifest the control plane would refuse for its size with nothing but the transport's message. */
function checkManifest(r: UploadRequest, files: readonly FoundFile[]): void {
  const bytes = BeginArtifactsRequest.encode({ jobId: r.jobId, attempt: r.attempt, files: files.map(wireFile) }).finish().length;
  if (bytes <= ARTIFACT_MANIFEST_BYTES) return;
  const mib = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MiB`;
  throw new ArtifactsError(
    `the list of the ${files.length} matching files takes ${mib(bytes)}, over the ${mib(ARTIFACT_MANIFEST_BYTES)} a control plane takes: ` +
      'match fewer files (an archive of them is one file)',
  );
}

async function describeAll(root: string, paths: readonly string[]): Promise<FoundFile[]> {
  const out: FoundFile[] = [];
  for (const p of paths) out.push(await describeArtifact(root, p));
  return out;
}

/** Begin, each file from what the peer holds, Commit: on one connection. */
async function session(r: UploadRequest, link: Link, root: string, files: readonly FoundFile[]): Promise<void> {
  const ids = { jobId: r.jobId, attempt: r.attempt };
  const c = link.client;
  const begin = await unary<BeginArtifactsResponse>('begin', BEGIN_DEADLINE_MS, r, link, (md, o, cb) =>
    c.beginArtifacts({ ...ids, files: files.map(wireFile) }, md, o, cb),
  );
  if (!begin.committed) {
    for (const [i, f] of files.entries()) {
      const held = Number(begin.held[i] ?? 0n);
      if (held > f.size) throw new StepError('begin', `${f.path}: the peer holds ${held} bytes of a ${f.size}-byte file`);
      if (held === f.size && f.size > 0) continue;
      r.log.info({ path: f.path, offset: held, size: f.size }, held > 0 ? 'resuming an artifact upload' : 'uploading an artifact');
      const now = await sendFile(r, link, root, f, held);
      if (now !== f.size) throw new StepError('upload', `${f.path}: the peer holds ${now} of its ${f.size} bytes after the upload`);
    }
  }
  const done = await unary<CommitArtifactsResponse>('commit', COMMIT_DEADLINE_MS, r, link, (md, o, cb) =>
    c.commitArtifacts(ids, md, o, cb),
  );
  const bytes = files.reduce((n, f) => n + f.size, 0);
  r.log.info({ files: files.length, bytes, peers: done.peers }, 'artifacts stored');
}

const wireFile = (f: FoundFile): ArtifactFile => ({ path: f.path, size: BigInt(f.size), sha256: f.sha256 });

/** Sends `f` from `offset` in CHUNK_BYTES chunks, waiting for the stream to drain; resolves what the peer then holds. */
async function sendFile(r: UploadRequest, link: Link, root: string, f: FoundFile, offset: number): Promise<number> {
  const fh = await openArtifact(root, f.path);
  const failed = new AbortController();
  const stop = AbortSignal.any([r.signal, link.signal, failed.signal]);
  let settle!: Callback<UploadArtifactResponse>;
  const answer = new Promise<UploadArtifactResponse>((ok, fail) => {
    settle = (err, res) => (err ? fail(new StepError('upload', `${f.path}: ${err.details || err.message}`, { cause: err })) : ok(res));
  });
  answer.catch(() => undefined); // awaited below, unless reading the file fails first
  const call = link.client.uploadArtifact(r.links.metadata(), (err, res) => {
    if (err) failed.abort();
    settle(err, res);
  });
  const cancel = (): void => call.cancel();
  stop.addEventListener('abort', cancel, { once: true });
  try {
    call.write({ msg: { $case: 'header', value: { jobId: r.jobId, attempt: r.attempt, path: f.path, offset: BigInt(offset) } } });
    // Up to the size described: a file grown since is sent as it was hashed; one that shrank fails the checksum.
    if (offset < f.size) {
      const bytes = fh.createReadStream({ autoClose: false, start: offset, end: f.size - 1, highWaterMark: CHUNK_BYTES });
      for await (const chunk of bytes as AsyncIterable<Buffer>) {
        if (stop.aborted) break;
        if (!call.write({ msg: { $case: 'data', value: chunk } })) await once(call, 'drain', { signal: stop }).catch(() => undefined);
      }
    }
    if (!stop.aborted) call.end();
    return Number((await answer).held);
  } catch (err) {
    call.cancel();
    throw err;
  } finally {
    stop.removeEventListener('abort', cancel);
    await fh.close();
  }
}

type Callback<T> = (err: ServiceError | null, res: T) => void;

/** One unary call with the agent's metadata and a deadline, cancelled when the connection or the upload ends. */
function unary<T>(
  step: Step,
  deadlineMs: number,
  r: UploadRequest,
  link: Link,
  start: (md: Metadata, o: { deadline: Date }, cb: Callback<T>) => { cancel(): void },
): Promise<T> {
  const stop = AbortSignal.any([r.signal, link.signal]);
  return new Promise<T>((resolve, reject) => {
    const call = start(r.links.metadata(), { deadline: new Date(Date.now() + deadlineMs) }, (err, res) => {
      stop.removeEventListener('abort', cancel);
      if (err) reject(new StepError(step, err.details || err.message, { cause: err }));
      else resolve(res);
    });
    const cancel = (): void => call.cancel();
    stop.addEventListener('abort', cancel, { once: true });
  });
}

export type Step = 'begin' | 'upload' | 'commit';

/** A failed call of the upload, and at which step (a FAILED_PRECONDITION means one thing on Begin, another after). */
export class StepError extends NamedError {
  constructor(
    readonly step: Step,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** What follows a failure: see the header. */
export function nextStep(err: unknown): 'gone' | 'refused' | 'reread' | 'again' {
  if (isArtifactsError(err)) return 'refused';
  const code = statusCode(err);
  const step = (err as Partial<StepError>).step;
  switch (code) {
    case status.FAILED_PRECONDITION:
      return step === 'begin' ? 'gone' : 'again'; // after Begin: an offset the peer does not hold, or a file it lacks
    case status.DATA_LOSS:
      return 'reread';
    case status.RESOURCE_EXHAUSTED:
    case status.INVALID_ARGUMENT:
    case status.PERMISSION_DENIED:
    case status.UNIMPLEMENTED:
    case status.OUT_OF_RANGE:
      return 'refused';
    case undefined:
      return step === undefined ? 'refused' : 'again'; // a file we could not read; or our own check of the peer's answer
    default:
      return 'again';
  }
}

const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));
