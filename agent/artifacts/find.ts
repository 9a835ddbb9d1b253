/**
 * Which workspace files a job's artifact globs name, and what each is (size,
 * sha256). picomatch matches; the walk is ours, so that it sees every
 * symlink: none is followed or uploaded, even one to a file (a job must not
 * make the agent upload /etc/shadow), and each one a glob names is logged.
 * A directory a glob names is not a file either. Files are opened without
 * following a final link and checked to be the path the walk found, so a
 * process the job left behind cannot swap a directory for a link meanwhile.
 */
import { createHash } from 'node:crypto';
import { constants, existsSync } from 'node:fs';
import { lstat, open, readdir, readlink, realpath, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import picomatch from 'picomatch';
import type { Logger } from 'pino';
import { ArtifactsError } from './errors.js';

/** Files the globs may name: past this the attempt's artifacts fail (the peer's own limit is usually lower). */
export const MAX_FILES = 10_000;

/** `*` within a segment, `**` across; dot files too (`dist/**` is all of dist); a leading `!` is a plain character. */
const MATCH: picomatch.PicomatchOptions = { dot: true, nonegate: true };

export interface FoundFile {
  /** Relative to the workspace, '/'-separated. */
  readonly path: string;
  readonly size: number;
  /** Lower-case hex. */
  readonly sha256: string;
}

/** One walk: from a directory of the workspace (the globs' fixed leading segments), down to `depth` levels. */
interface Walk {
  readonly base: string;
  depth: number;
  readonly globs: string[];
}

/**
 * The regular files under `root` matching any of `globs`, but those
 * `withheld` (logged): relative paths, sorted, each once. A glob's fixed
 * leading directories must be directories (not links); a directory that does
 * not exist matches nothing; one that cannot be read is an ArtifactsError.
 */
export async function findArtifacts(
  root: string,
  globs: readonly string[],
  log: Logger,
  withheld: readonly string[] = [],
): Promise<string[]> {
  const found = new Set<string>();
  for (const w of walksOf(globs)) {
    const isMatch = picomatch(w.globs, MATCH);
    if (await isBaseDir(root, w.base, log)) await walk(root, w.base, w.depth, isMatch, found, log);
  }
  for (const path of withheld) if (found.delete(path)) log.warn({ path }, 'artifacts: not uploading a secret file of the job');
  return [...found].sort();
}

/** Groups the globs by their fixed leading directories; each walk goes as deep as its deepest glob (no limit with `**`). */
function walksOf(globs: readonly string[]): Walk[] {
  const walks = new Map<string, Walk>();
  for (const g of globs) {
    const segments = g.split('/');
    let fixed = 0;
    while (fixed < segments.length - 1 && !picomatch.scan(segments[fixed]!).isGlob) fixed++;
    const base = segments.slice(0, fixed).join('/');
    const rest = segments.slice(fixed);
    const depth = rest.some((s) => s.includes('**')) ? Infinity : rest.length;
    const w = walks.get(base) ?? { base, depth: 0, globs: [] };
    w.depth = Math.max(w.depth, depth);
    w.globs.push(g);
    walks.set(base, w);
  }
  return [...walks.values()];
}

/** True when `base` is a directory reached without a link. */
async function isBaseDir(root: string, base: string, log: Logger): Promise<boolean> {
  let at = '';
  for (const segment of base === '' ? [] : base.split('/')) {
    at = at === '' ? segment : `${at}/${segment}`;
    const st = await lstat(join(root, at)).catch(absentOr(`cannot read ${at}`));
    if (!st) return false;
    if (st.isSymbolicLink()) {
      log.warn({ path: at }, 'artifacts: not following a symlink');
      return false;
    }
    if (!st.isDirectory()) return false;
  }
  return true;
}

async function walk(
  root: string,
  dir: string,
  depth: number,
  isMatch: (path: string) => boolean,
  found: Set<string>,
  log: Logger,
): Promise<void> {
  if (depth <= 0) return;
  const entries = await readdir(join(root, dir), { withFileTypes: true }).catch(absentOr(`cannot read ${dir || 'the workspace'}`));
  for (const e of entries ?? []) {
    const path = dir === '' ? e.name : `${dir}/${e.name}`;
    if (e.isDirectory()) await walk(root, path, depth - 1, isMatch, found, log);
    else if (!isMatch(path)) continue;
    else if (e.isSymbolicLink()) log.warn({ path }, 'artifacts: skipping a symlink (links are never uploaded)');
    else if (e.isFile()) {
      found.add(path);
      if (found.size > MAX_FILES) throw new ArtifactsError(`more than ${MAX_FILES} files match the artifact globs`);
    }
  }
}

/** ENOENT reads as absent (the job did not make it); anything else fails the artifacts, saying what could not be read. */
function absentOr(what: string): (err: unknown) => undefined {
  return (err: unknown) => {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new ArtifactsError(`${what}: ${code ?? (err as Error).message}`, { cause: err });
  };
}

/**
 * Opens a file the walk found, for reading: not through a link, and (where
 * /proc shows it) only if what was opened is that path under the real
 * workspace. `realRoot`: realpath of the workspace.
 */
export async function openArtifact(realRoot: string, path: string): Promise<FileHandle> {
  const fh = await open(join(realRoot, path), constants.O_RDONLY | constants.O_NOFOLLOW).catch((err: unknown) => {
    throw new ArtifactsError(`${path}: cannot open: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  });
  try {
    if (!(await fh.stat()).isFile()) throw new ArtifactsError(`${path}: no longer a regular file`);
    const proc = `/proc/self/fd/${fh.fd}`;
    if (existsSync(proc) && (await readlink(proc)) !== join(realRoot, path))
      throw new ArtifactsError(`${path}: its directory was replaced by a link after the job ended`);
    return fh;
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/** The workspace's real path (the attempt's directory may sit under a link). */
export const realRoot = (root: string): Promise<string> => realpath(root);

/** Size and sha256 of a found file, read through once. */
export async function describeArtifact(realRoot: string, path: string): Promise<FoundFile> {
  const fh = await openArtifact(realRoot, path);
  const hash = createHash('sha256');
  let size = 0;
  try {
    for await (const chunk of fh.createReadStream({ autoClose: false, highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>) {
      hash.update(chunk);
      size += chunk.length;
    }
  } finally {
    await fh.close();
  }
  return { path, size, sha256: hash.digest('hex') };
}
