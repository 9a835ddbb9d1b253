/**
 * Artifact storage in the peer's blob directory (`<data dir>/blobs/artifacts`):
 *
 *     .uploads/<job>/<attempt>/manifest.json   an upload in progress
 *     .uploads/<job>/<attempt>/<i>.part        file i, as far as it came
 *     .uploads/<job>/<attempt>/<i>             file i, complete and checked
 *     <job>/<attempt>/manifest.json, <i>        stored: the same, renamed at commit
 *
 * Files are named by their index in the manifest, never by the job's paths,
 * so no path a job chose is ever a path on the peer. Every byte is fsync'd
 * before it is reported held; commit renames the whole upload into place in
 * one step, so a reader sees all of an attempt's files or none.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, type Stats } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { ArtifactFile } from '../../proto/gen/runmesh/v1/artifact.js';
import { isDiskFull } from '../../proto/disk-space.js';
import { ArtifactError } from './errors.js';
import {
  checkManifest,
  checkPath,
  sameManifest,
  type ArtifactKey,
  type ArtifactLimits,
  type ArtifactStorage,
  type UploadState,
} from './storage.js';
import { absentIfMissing } from '../../proto/absent.js';

const SAFE_ID = /^[A-Za-z0-9_.-]+$/;
const UPLOADS = '.uploads';
const MANIFEST = 'manifest.json';
/** Read size of stored files (and of the checksum pass). */
const READ_CHUNK = 256 * 1024;

interface Manifest {
  files: Array<{ path: string; size: number; sha256: string }>;
}

export class DirArtifactStorage implements ArtifactStorage {
  /** One operation at a time per attempt: begin, append, commit and abort never interleave. */
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(private readonly root: string) {}

  async begin(key: ArtifactKey, files: readonly ArtifactFile[], limits: ArtifactLimits): Promise<UploadState> {
    checkManifest(files, limits);
    return this.locked(key, async () => {
      if (await this.readManifest(this.storedDir(key))) return { held: files.map((f) => Number(f.size)), committed: true };
      const dir = this.uploadDir(key);
      const current = await this.readManifest(dir);
      const wanted = files.map((f) => ({ path: f.path, size: Number(f.size), sha256: f.sha256 }));
      if (!current || !sameManifest(toFiles(current), files)) {
        await rm(dir, { recursive: true, force: true });
        await diskErrors(async () => {
          await mkdir(dir, { recursive: true });
          await writeDurably(join(dir, MANIFEST), JSON.stringify({ files: wanted } satisfies Manifest));
        });
      }
      const held: number[] = [];
      for (const [i, f] of wanted.entries()) held.push(await this.settle(dir, i, f));
      return { held, committed: false };
    });
  }

  append(key: ArtifactKey, path: string, offset: number, data: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<number> {
    checkPath(path, 'path');
    return this.locked(key, async () => {
      const dir = this.uploadDir(key);
      const manifest = await this.readManifest(dir);
      if (!manifest) {
        if (await this.readManifest(this.storedDir(key)))
          throw new ArtifactError('offset', `${path}: the attempt's artifacts are stored already`);
        throw new ArtifactError('offset', `${path}: no upload begun for job ${key.jobId} attempt ${key.attempt} (BeginArtifacts first)`);
      }
      const i = manifest.files.findIndex((f) => f.path === path);
      const file = manifest.files[i];
      if (!file) throw new ArtifactError('invalid', `path: ${path} is not in the upload's manifest`);
      const held = await this.held(dir, i, file.size);
      if (offset !== held) throw new ArtifactError('offset', `offset: ${offset}, but ${held} bytes of ${path} are held; send from there`);
      // Checked and complete already. A part holding every byte (an empty file, or one whose check was cut short) goes on to it.
      if (await exists(join(dir, String(i)))) return held;
      const part = join(dir, `${i}.part`);
      // The digest runs as the bytes arrive (a resumed file's held part is read into it first): no second pass at the end.
      const hash = await hashOf(part, held);
      let written = held;
      await diskErrors(async () => {
        const fh = await open(part, 'a');
        try {
          for await (const chunk of data) {
            if (written + chunk.byteLength > file.size)
              throw new ArtifactError('invalid', `data: more than the ${file.size} bytes ${path} was declared with`);
            await fh.write(chunk);
            hash.update(chunk);
            written += chunk.byteLength;
          }
        } finally {
          await syncClose(fh);
        }
      });
      if (written < file.size) return written;
      if (hash.digest('hex') !== file.sha256) {
        await rm(part, { force: true });
        throw new ArtifactError('checksum', `${path}: the bytes received do not match its sha256; send it again from 0`);
      }
      await rename(part, join(dir, String(i)));
      return written;
    });
  }

  commit(key: ArtifactKey): Promise<ArtifactFile[]> {
    return this.locked(key, async () => {
      const stored = await this.readManifest(this.storedDir(key));
      if (stored) return toFiles(stored);
      const dir = this.uploadDir(key);
      const manifest = await this.readManifest(dir);
      if (!manifest)
        throw new ArtifactError('offset', `no upload begun for job ${key.jobId} attempt ${key.attempt} (BeginArtifacts first)`);
      for (const [i, f] of manifest.files.entries()) {
        const held = await this.held(dir, i, f.size);
        if (held < f.size || !(await exists(join(dir, String(i)))))
          throw new ArtifactError('incomplete', `${f.path}: ${held} of ${f.size} bytes held; upload the rest before committing`);
      }
      await diskErrors(async () => {
        await mkdir(this.jobDir(key.jobId), { recursive: true });
        await syncDir(dir);
        await rename(dir, this.storedDir(key));
        await syncDir(this.jobDir(key.jobId));
      });
      return toFiles(manifest);
    });
  }

  abort(key: ArtifactKey): Promise<void> {
    return this.locked(key, () => rm(this.uploadDir(key), { recursive: true, force: true }));
  }

  async list(key: ArtifactKey): Promise<ArtifactFile[] | undefined> {
    const m = await this.readManifest(this.storedDir(key));
    return m && toFiles(m);
  }

  async *read(key: ArtifactKey, path: string, offset: number, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
    const dir = this.storedDir(key);
    const m = await this.readManifest(dir);
    const i = m?.files.findIndex((f) => f.path === path) ?? -1;
    if (!m || i < 0) throw new ArtifactError('missing', `artifact ${path} of job ${key.jobId} attempt ${key.attempt} not found`);
    if (offset >= m.files[i]!.size) return;
    yield* createReadStream(join(dir, String(i)), { start: offset, highWaterMark: READ_CHUNK, signal }) as AsyncIterable<Buffer>;
  }

  async remove(jobId: string): Promise<void> {
    checked(jobId);
    await rm(this.jobDir(jobId), { recursive: true, force: true });
    await rm(join(this.root, UPLOADS, jobId), { recursive: true, force: true });
  }

  async jobs(): Promise<string[]> {
    const names = new Set([...(await dirNames(this.root)), ...(await dirNames(join(this.root, UPLOADS)))]);
    return [...names].filter((n) => SAFE_ID.test(n) && n !== UPLOADS).sort();
  }

  async uploads(): Promise<Array<ArtifactKey & { changedAt: number }>> {
    const out: Array<ArtifactKey & { changedAt: number }> = [];
    for (const jobId of await dirNames(join(this.root, UPLOADS))) {
      if (!SAFE_ID.test(jobId)) continue;
      for (const a of await dirNames(join(this.root, UPLOADS, jobId))) {
        const attempt = Number(a);
        if (!Number.isInteger(attempt) || attempt < 1) continue;
        const dir = join(this.root, UPLOADS, jobId, a);
        // A file gone between the listing and its stat changed just now; any other failure is an error, never "old".
        const times = await Promise.all((await dirNames(dir)).map(async (n) => (await statOf(join(dir, n)))?.mtimeMs ?? Date.now()));
        out.push({ jobId, attempt, changedAt: Math.max(0, ...times) });
      }
    }
    return out;
  }

  private jobDir(jobId: string): string {
    return join(this.root, checked(jobId));
  }

  private storedDir(k: ArtifactKey): string {
    return join(this.jobDir(k.jobId), String(attemptOf(k)));
  }

  private uploadDir(k: ArtifactKey): string {
    return join(this.root, UPLOADS, checked(k.jobId), String(attemptOf(k)));
  }

  /**
   * Bytes held of file `i`, its part checked when it holds every byte (an
   * empty file, or one whose check an earlier append did not get to): kept
   * if its sha256 matches, else dropped, to be sent again from 0.
   */
  private async settle(dir: string, i: number, f: Manifest['files'][number]): Promise<number> {
    const held = await this.held(dir, i, f.size);
    if (held < f.size || (await exists(join(dir, String(i))))) return held;
    const part = join(dir, `${i}.part`);
    if ((await hashOf(part, f.size)).digest('hex') !== f.sha256) {
      await rm(part, { force: true });
      return 0;
    }
    await diskErrors(async () => {
      await writeFile(part, '', { flag: 'a' }); // an empty file may have no part yet
      await rename(part, join(dir, String(i)));
    });
    return held;
  }

  /** Bytes held of file `i`: all of it once checked, else what its part file holds. */
  private async held(dir: string, i: number, size: number): Promise<number> {
    if (await exists(join(dir, String(i)))) return size;
    return Math.min((await statOf(join(dir, `${i}.part`)))?.size ?? 0, size);
  }

  /** The manifest in `dir`; undefined only when there is none (any other failure to read it throws). */
  private async readManifest(dir: string): Promise<Manifest | undefined> {
    const text = await readFile(join(dir, MANIFEST), 'utf8').catch(absentIfMissing);
    return text === undefined ? undefined : (JSON.parse(text) as Manifest);
  }

  private locked<T>(k: ArtifactKey, work: () => Promise<T>): Promise<T> {
    const id = `${k.jobId}/${k.attempt}`;
    const run = (this.locks.get(id) ?? Promise.resolve()).then(work, work);
    const tail = run.catch(() => undefined);
    this.locks.set(id, tail);
    void tail.then(() => {
      if (this.locks.get(id) === tail) this.locks.delete(id);
    });
    return run;
  }
}

function checked(jobId: string): string {
  if (!SAFE_ID.test(jobId)) throw new ArtifactError('invalid', `job_id: ${JSON.stringify(jobId.slice(0, 64))} is not a job id`);
  return jobId;
}

function attemptOf(k: ArtifactKey): number {
  if (!Number.isInteger(k.attempt) || k.attempt < 1) throw new ArtifactError('invalid', `attempt: ${k.attempt} is not an attempt number`);
  return k.attempt;
}

function toFiles(m: Manifest): ArtifactFile[] {
  return m.files.map((f) => ({ path: f.path, size: BigInt(f.size), sha256: f.sha256 }));
}

/** `path`'s stat; undefined only when it does not exist (any other failure throws). */
function statOf(path: string): Promise<Stats | undefined> {
  return stat(path).catch(absentIfMissing);
}

const exists = async (path: string): Promise<boolean> => (await statOf(path)) !== undefined;

async function dirNames(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(absentIfMissing)) ?? [];
}

/** A sha256 fed the first `bytes` of `file` (none: a fresh one). */
async function hashOf(file: string, bytes: number): Promise<Hash> {
  const h = createHash('sha256');
  if (bytes > 0)
    for await (const chunk of createReadStream(file, { end: bytes - 1, highWaterMark: READ_CHUNK }) as AsyncIterable<Buffer>)
      h.update(chunk);
  return h;
}

async function writeDurably(file: string, text: string): Promise<void> {
  await writeFile(`${file}.tmp`, text);
  const fh = await open(`${file}.tmp`, 'r+');
  await syncClose(fh);
  await rename(`${file}.tmp`, file);
}

async function syncClose(fh: FileHandle): Promise<void> {
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  await syncClose(fh);
}

/** A full disk is the caller's to hear of as such (RESOURCE_EXHAUSTED), not an internal error. */
async function diskErrors<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (isDiskFull(err)) throw new ArtifactError('disk', `the peer's artifact store is full (${(err as Error).message})`, { cause: err });
    throw err;
  }
}
