/**
 * The artifact storage contract, run against every implementation (today the
 * peer's blob directory; an S3-compatible one joins the list next): uploads
 * resume from what is held, nothing is readable before the commit, nothing
 * partial is kept, bytes are checked against their sha256, limits hold.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ArtifactFile } from '../../proto/gen/runmesh/v1/artifact.js';
import { DirArtifactStorage } from './dir-storage.js';
import { artifactErrorOf } from './errors.js';
import { DEFAULT_ARTIFACT_LIMITS, type ArtifactStorage } from './storage.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const IMPLEMENTATIONS: Array<[string, () => { storage: ArtifactStorage; files: () => string[] }]> = [
  [
    'blob directory',
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'artifacts-'));
      dirs.push(dir);
      const all = (d: string): string[] =>
        readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? all(join(d, e.name)) : [join(d, e.name)]));
      return { storage: new DirArtifactStorage(dir), files: () => all(dir) };
    },
  ],
];

const JOB = 'j_0123456789abcdef';
const key = { jobId: JOB, attempt: 1 };

function fileOf(path: string, body: Buffer): ArtifactFile {
  return { path, size: BigInt(body.length), sha256: createHash('sha256').update(body).digest('hex') };
}

async function bytes(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of it) parts.push(c);
  return Buffer.concat(parts);
}

/** `kind: message` of the ArtifactError `p` rejects with. */
async function failure(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  const a = artifactErrorOf(err);
  if (!a) throw new Error(`expected an ArtifactError, got ${String(err)}`);
  return `${a.kind}: ${a.message}`;
}

describe.each(IMPLEMENTATIONS)('artifact storage: %s', (_name, make) => {
  it('resumes an upload from what it holds, shows nothing before the commit, then serves the bytes', async () => {
    const { storage } = make();
    const big = Buffer.alloc(700_000, 1);
    big.write('the end', big.length - 7);
    const small = Buffer.from('report\n');
    const files = [fileOf('dist/app.bin', big), fileOf('report.xml', small)];
    expect(await storage.begin(key, files, DEFAULT_ARTIFACT_LIMITS)).toEqual({ held: [0, 0], committed: false });
    expect(await storage.append(key, 'dist/app.bin', 0, [big.subarray(0, 300_000)])).toBe(300_000);
    // As after an agent's restart: the same manifest resumes; another offset than what is held is refused.
    expect(await storage.begin(key, files, DEFAULT_ARTIFACT_LIMITS)).toEqual({ held: [300_000, 0], committed: false });
    expect(await failure(storage.append(key, 'dist/app.bin', 0, [big]))).toMatch(/^offset: .*300000/);
    expect(await failure(storage.commit(key))).toMatch(/^incomplete: .*dist\/app\.bin/);
    expect(await storage.list(key)).toBeUndefined();
    expect(await storage.append(key, 'dist/app.bin', 300_000, [big.subarray(300_000)])).toBe(big.length);
    expect(await storage.append(key, 'report.xml', 0, [small])).toBe(small.length);
    expect(await storage.commit(key)).toEqual(files);
    expect(await storage.commit(key)).toEqual(files); // a commit whose answer was lost is asked again
    expect(await storage.begin(key, files, DEFAULT_ARTIFACT_LIMITS)).toMatchObject({ committed: true });
    expect(await storage.list(key)).toEqual(files);
    expect((await bytes(storage.read(key, 'dist/app.bin', 0))).equals(big)).toBe(true);
    expect((await bytes(storage.read(key, 'dist/app.bin', big.length - 7))).toString()).toBe('the end');
    expect(await failure(bytes(storage.read(key, 'nope', 0)))).toMatch(/^missing: /);
    expect(await storage.jobs()).toEqual([JOB]);
    await storage.remove(JOB);
    expect(await storage.list(key)).toBeUndefined();
    expect(await storage.jobs()).toEqual([]);
  });

  it('stores an empty file, and a file whose every byte was held but not yet checked, once Begin checks it', async () => {
    const { storage } = make();
    const empty = fileOf('empty.txt', Buffer.alloc(0));
    const body = Buffer.from('all of it');
    const full = fileOf('full.txt', body);
    expect(await storage.begin(key, [empty, full], DEFAULT_ARTIFACT_LIMITS)).toEqual({ held: [0, 0], committed: false });
    expect(await storage.append(key, 'empty.txt', 0, [])).toBe(0);
    // As when the peer stopped between the last byte and its check: the part is whole, unchecked.
    expect(
      await storage
        .append(
          key,
          'full.txt',
          0,
          (async function* () {
            yield body;
            throw new Error('the peer stopped');
          })(),
        )
        .catch((e: unknown) => (e as Error).message),
    ).toBe('the peer stopped');
    // A Begin (the agent resuming) checks a whole part: nothing is left to send, and the commit goes through.
    expect(await storage.begin(key, [empty, full], DEFAULT_ARTIFACT_LIMITS)).toEqual({ held: [0, body.length], committed: false });
    expect(await storage.commit(key)).toEqual([empty, full]);
    expect((await bytes(storage.read(key, 'empty.txt', 0))).length).toBe(0);
    await storage.remove(JOB);
  });

  it('drops a file whose bytes do not match its sha256, and never takes more than its size', async () => {
    const { storage } = make();
    const body = Buffer.from('0123456789');
    const file = fileOf('a.txt', body);
    await storage.begin(key, [file], DEFAULT_ARTIFACT_LIMITS);
    expect(await failure(storage.append(key, 'a.txt', 0, [Buffer.from('0123456780')]))).toMatch(/^checksum: /);
    expect(await storage.begin(key, [file], DEFAULT_ARTIFACT_LIMITS)).toEqual({ held: [0], committed: false });
    expect(await failure(storage.append(key, 'a.txt', 0, [body, Buffer.from('x')]))).toMatch(/^invalid: /);
    await storage.abort(key);
  });

  it('refuses a manifest over a limit or with a bad path, naming it, and keeps nothing', async () => {
    const { storage, files } = make();
    const limits = { fileBytes: 100, jobBytes: 150, files: 2 };
    const f = (path: string, size: number): ArtifactFile => ({ path, size: BigInt(size), sha256: 'a'.repeat(64) });
    expect(await failure(storage.begin(key, [f('big.bin', 101)], limits))).toBe(
      'limit: big.bin: 101 bytes, over the per-file limit of 100 (--artifact-max-file)',
    );
    expect(await failure(storage.begin(key, [f('a', 100), f('b', 51)], limits))).toMatch(/^limit: .*--artifact-max-job/);
    expect(await failure(storage.begin(key, [f('a', 1), f('b', 1), f('c', 1)], limits))).toMatch(/^limit: .*--artifact-max-files/);
    for (const bad of ['../etc/passwd', '/abs', 'a//b', 'a/./b', ''])
      expect(await failure(storage.begin(key, [f(bad, 1)], limits))).toMatch(/^invalid: .*files\[0\]\.path/);
    expect(await failure(storage.begin(key, [f('a', 1), f('a', 1)], limits))).toMatch(/listed twice/);
    expect(await failure(storage.begin(key, [{ path: 'a', size: 1n, sha256: 'zz' }], limits))).toMatch(/^invalid: /);
    expect(files()).toEqual([]);
  });

  it('starts again from nothing when an upload is begun with another manifest', async () => {
    const { storage } = make();
    const one = Buffer.from('first');
    await storage.begin(key, [fileOf('x', one)], DEFAULT_ARTIFACT_LIMITS);
    await storage.append(key, 'x', 0, [one.subarray(0, 3)]);
    const two = Buffer.from('second version');
    expect(await storage.begin(key, [fileOf('x', two)], DEFAULT_ARTIFACT_LIMITS)).toEqual({ held: [0], committed: false });
    expect(
      (await storage.uploads()).map((u) => ({ jobId: u.jobId, attempt: u.attempt, recent: u.changedAt > Date.now() - 60_000 })),
    ).toEqual([{ ...key, recent: true }]);
    await storage.abort(key);
    expect(await storage.uploads()).toEqual([]);
  });
});
