/**
 * Where a peer keeps artifacts: the storage interface, and the checks every
 * implementation shares (paths, digests, limits). The interface is shaped
 * after an S3-compatible object store's multipart upload, so one can
 * implement it next: `begin` is CreateMultipartUpload (or, resumed, ListParts),
 * `append` an UploadPart, `commit` CompleteMultipartUpload plus a manifest
 * object, `read` a ranged GetObject, `remove` a DeleteObjects by prefix. The
 * one implementation today is the peer's blob directory (dir-storage.ts).
 *
 * An attempt's artifacts are stored all at once or not at all: files are
 * uploaded into a staging area and become readable only when `commit` finds
 * every one of them complete and checked; an upload over a limit, or given
 * up, leaves nothing behind.
 */
import type { ArtifactFile } from '../../proto/gen/runmesh/v1/artifact.js';
import { ArtifactError } from './errors.js';

/** One attempt's artifacts. */
export interface ArtifactKey {
  readonly jobId: string;
  readonly attempt: number;
}

/** What a peer accepts of one attempt (`--artifact-max-file`, `--artifact-max-job`, `--artifact-max-files`). */
export interface ArtifactLimits {
  fileBytes: number;
  jobBytes: number;
  files: number;
}

export const DEFAULT_ARTIFACT_LIMITS: ArtifactLimits = { fileBytes: 1024 ** 3, jobBytes: 10 * 1024 ** 3, files: 1000 };

/** Where an upload stands: bytes held of each file (the manifest's order), or stored already. */
export interface UploadState {
  held: number[];
  committed: boolean;
}

export interface ArtifactStorage {
  /**
   * Starts the upload of an attempt's files, or resumes it: with the same
   * manifest as the upload in progress, each file's held bytes are kept;
   * with another, that upload is dropped and this one starts from nothing.
   * An attempt already stored answers `committed`. Throws ArtifactError
   * (`invalid`, `limit`) for a manifest it refuses, keeping nothing.
   */
  begin(key: ArtifactKey, files: readonly ArtifactFile[], limits: ArtifactLimits): Promise<UploadState>;
  /**
   * Appends `data` to one file of the upload, from `offset`, which must be
   * what is held (`offset` otherwise); never past the file's declared size.
   * Resolves with the bytes held durably once `data` ends (or fails: what was
   * written up to then is kept). A file found complete is checked against its
   * sha256 (`checksum`: dropped, to be sent again).
   */
  append(key: ArtifactKey, path: string, offset: number, data: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<number>;
  /** Makes the upload the attempt's stored artifacts (`incomplete` unless every file is held and checked); idempotent. */
  commit(key: ArtifactKey): Promise<ArtifactFile[]>;
  /** Drops an upload in progress; nothing of it is kept. */
  abort(key: ArtifactKey): Promise<void>;
  /** The attempt's stored files; undefined when none are stored here. */
  list(key: ArtifactKey): Promise<ArtifactFile[] | undefined>;
  /** A stored file's bytes from `offset` (`missing` when not stored here). */
  read(key: ArtifactKey, path: string, offset: number, signal?: AbortSignal): AsyncIterable<Uint8Array>;
  /** Every attempt's artifacts of a job, stored or being uploaded. */
  remove(jobId: string): Promise<void>;
  /** Jobs with anything here, stored or uploading. */
  jobs(): Promise<string[]>;
  /** Uploads in progress with when each last changed (ms since the epoch), for the sweep of abandoned ones. */
  uploads(): Promise<Array<ArtifactKey & { changedAt: number }>>;
}

const PATH_BYTES = 1024;
const SHA256 = /^[0-9a-f]{64}$/;

/** A manifest path: relative, '/'-separated, no `.`/`..`/empty segment, no NUL or backslash, at most 1 KiB. */
export function checkPath(path: string, field: string): string {
  const bad = (why: string): never => {
    throw new ArtifactError('invalid', `${field}: ${why}`);
  };
  if (!path) bad('missing');
  if (Buffer.byteLength(path) > PATH_BYTES) bad(`${Buffer.byteLength(path)} bytes; at most ${PATH_BYTES}`);
  if (path.includes('\0') || path.includes('\\')) bad(`${JSON.stringify(path.slice(0, 64))} holds a NUL or a backslash`);
  if (path.startsWith('/')) bad(`${JSON.stringify(path.slice(0, 64))} is absolute; give it relative to the workspace`);
  for (const s of path.split('/'))
    if (s === '' || s === '.' || s === '..') bad(`${JSON.stringify(path.slice(0, 64))} has a "${s}" segment`);
  return path;
}

/**
 * Checks a manifest against the limits, naming the first file or total over
 * one (`invalid` or `limit`). The message names the server flag, so whoever
 * reads it on the failed job knows what to change.
 */
export function checkManifest(files: readonly ArtifactFile[], limits: ArtifactLimits): void {
  if (files.length > limits.files)
    throw new ArtifactError('limit', `${files.length} files, over the limit of ${limits.files} files per job (--artifact-max-files)`);
  const seen = new Set<string>();
  let total = 0;
  files.forEach((f, i) => {
    checkPath(f.path, `files[${i}].path`);
    if (seen.has(f.path)) throw new ArtifactError('invalid', `files[${i}].path: ${f.path} is listed twice`);
    seen.add(f.path);
    if (!SHA256.test(f.sha256)) throw new ArtifactError('invalid', `files[${i}].sha256: not 64 lower-case hex digits`);
    const size = Number(f.size);
    if (size > limits.fileBytes)
      throw new ArtifactError('limit', `${f.path}: ${size} bytes, over the per-file limit of ${limits.fileBytes} (--artifact-max-file)`);
    total += size;
  });
  if (total > limits.jobBytes)
    throw new ArtifactError(
      'limit',
      `${files.length} files of ${total} bytes in all, over the per-job limit of ${limits.jobBytes} (--artifact-max-job)`,
    );
}

/** Two manifests list the same files, in the same order, with the same sizes and digests. */
export function sameManifest(a: readonly ArtifactFile[], b: readonly ArtifactFile[]): boolean {
  return (
    a.length === b.length && a.every((f, i) => f.path === b[i]?.path && Number(f.size) === Number(b[i]?.size) && f.sha256 === b[i]?.sha256)
  );
}
