/**
 * Receiving one artifact (ArtifactService.GetArtifact: its ArtifactFile, then
 * its bytes) into stdout or a file. The bytes are counted and hashed as they
 * arrive and checked against the size and sha256 the first message announced.
 * A file is written beside its destination under a temporary name, fsync'd,
 * and renamed into place only once it is complete and checked: a failed or
 * interrupted download leaves nothing at the destination, and an earlier file
 * there untouched.
 */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { type FileHandle, open, rename, rm, stat } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { absentIfMissing } from '../proto/absent.js';
import type { ArtifactFile, GetArtifactResponse } from '../proto/gen/runmesh/v1/artifact.js';
import { CliError, UsageError } from './errors.js';

/** Where the bytes go while they arrive; `finish` runs only after they were all checked. */
export interface ArtifactSink {
  write(chunk: Uint8Array): Promise<void>;
  finish(): Promise<void>;
  /** Undoes whatever was written (a file not kept); safe after a failed write. */
  discard(): Promise<void>;
}

/** The bytes did not match what the server announced (or the stream ended without a file). */
export class ArtifactMismatchError extends CliError {}

/**
 * Reads `stream` into `sink` and returns the file it announced. Throws
 * (after discarding the sink) on a stream error, a first message that is not
 * a file, or bytes whose count or sha256 differ from the announcement.
 */
export async function receiveArtifact(stream: AsyncIterable<GetArtifactResponse>, sink: ArtifactSink): Promise<ArtifactFile> {
  try {
    const file = await receive(stream, sink);
    await sink.finish();
    return file;
  } catch (err) {
    await sink.discard();
    throw err;
  }
}

async function receive(stream: AsyncIterable<GetArtifactResponse>, sink: ArtifactSink): Promise<ArtifactFile> {
  let file: ArtifactFile | undefined;
  const hash = createHash('sha256');
  let received = 0n;
  for await (const res of stream) {
    const msg = res.msg;
    if (msg?.$case === 'file' && file === undefined) {
      file = msg.value;
    } else if (msg?.$case === 'data' && file !== undefined) {
      hash.update(msg.value);
      received += BigInt(msg.value.length);
      if (received > file.size) throw mismatch(file, `more than its ${file.size} bytes arrived`);
      await sink.write(msg.value);
    } else {
      throw new ArtifactMismatchError(
        `GetArtifact: unexpected ${msg?.$case ?? 'empty'} message ${file ? 'after the data began' : 'before the file'}`,
      );
    }
  }
  if (file === undefined) throw new ArtifactMismatchError('GetArtifact: the stream ended before naming the file');
  if (received !== file.size) throw mismatch(file, `${received} of its ${file.size} bytes arrived`);
  const sha256 = hash.digest('hex');
  if (sha256 !== file.sha256) throw mismatch(file, `its bytes hash to sha256 ${sha256}, not the stored ${file.sha256}`);
  return file;
}

function mismatch(file: ArtifactFile, what: string): ArtifactMismatchError {
  return new ArtifactMismatchError(`${file.path}: ${what}; nothing was kept`);
}

/** This process's stdout, waiting for it to drain (a closed reader ends the process: cli/pipes.ts). */
export const stdoutSink: ArtifactSink = {
  async write(chunk) {
    if (!process.stdout.write(chunk)) await once(process.stdout, 'drain');
  },
  finish: () => Promise.resolve(),
  discard: () => Promise.resolve(),
};

/**
 * `sink`, refusing bytes that look binary (a NUL in the first chunk, as curl
 * and git judge it) when it is a terminal: they would garble it. `-o -`
 * writes them anyway.
 */
export function refuseBinaryOnTerminal(sink: ArtifactSink, isTerminal: boolean): ArtifactSink {
  let first = isTerminal;
  return {
    async write(chunk) {
      if (first && chunk.includes(0)) {
        throw new UsageError('the artifact is binary and stdout is a terminal: use -o FILE, or -o - to write it here anyway');
      }
      first = false;
      await sink.write(chunk);
    },
    finish: () => sink.finish(),
    discard: () => sink.discard(),
  };
}

/**
 * Where `-o` puts an artifact: `output` itself, or `output/<basename of the
 * artifact>` when `output` ends with `/` or is an existing directory.
 */
export async function destinationFor(output: string, artifactPath: string): Promise<string> {
  const name = basename(artifactPath);
  if (output.endsWith('/')) {
    const dir = await stat(output).catch(absentIfMissing);
    if (!dir?.isDirectory()) throw new UsageError(`-o ${output}: no such directory`);
    return join(output, name);
  }
  const existing = await stat(output).catch(absentIfMissing);
  return existing?.isDirectory() ? join(output, name) : output;
}

/**
 * A sink that writes `.<name>.<random>.part` beside `destination` and, once
 * finished, fsyncs it, renames it over `destination` and fsyncs the directory.
 * Until then an interrupt (SIGINT, SIGTERM) removes the part file and exits.
 */
export async function fileSink(destination: string): Promise<ArtifactSink> {
  const part = join(dirname(destination), `.${basename(destination)}.${randomBytes(4).toString('hex')}.part`);
  let handle: FileHandle;
  try {
    handle = await open(part, 'wx', 0o644);
  } catch (err) {
    throw new CliError(`cannot write ${destination}: ${(err as Error).message}`, { cause: err });
  }
  const interrupted = (signal: NodeJS.Signals): void => {
    rmSync(part, { force: true });
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', interrupted).once('SIGTERM', interrupted);
  const release = (): void => void process.off('SIGINT', interrupted).off('SIGTERM', interrupted);
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await handle.close();
  };
  return {
    async write(chunk) {
      await handle.write(chunk);
    },
    async finish() {
      try {
        await handle.sync();
        await close();
        await rename(part, destination);
      } catch (err) {
        throw new CliError(`cannot write ${destination}: ${(err as Error).message}`, { cause: err });
      }
      release();
      await syncDir(dirname(destination));
    },
    async discard() {
      release();
      await close().catch(() => undefined);
      await rm(part, { force: true });
    },
  };
}

/** Makes a rename durable; a filesystem that cannot fsync a directory is left as it is. */
async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, 'r').catch(() => undefined);
  if (!d) return;
  await d.sync().catch(() => undefined);
  await d.close();
}
