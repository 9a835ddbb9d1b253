import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ArtifactFile, GetArtifactResponse } from '../proto/gen/runmesh/v1/artifact.js';
import { tempDir } from '../test/support/processes.js';
import { destinationFor, fileSink, receiveArtifact } from './artifact-download.js';
import { listing } from './commands/artifacts.js';

const body = Buffer.from('built bytes\n\u0000\u00ff binary too');
const announced: ArtifactFile = {
  path: 'dist/out.bin',
  size: BigInt(body.length),
  sha256: createHash('sha256').update(body).digest('hex'),
};

/** A GetArtifact answer as the server streams it: the file, then its bytes in chunks. */
async function* answer(file: ArtifactFile, bytes: Buffer, chunk = 5): AsyncGenerator<GetArtifactResponse> {
  yield { msg: { $case: 'file', value: file } };
  for (let at = 0; at < bytes.length; at += chunk) yield { msg: { $case: 'data', value: bytes.subarray(at, at + chunk) } };
}

describe('receiving an artifact into a file', () => {
  it('renames the checked file into place, over an older one, leaving no part file', async () => {
    const dir = await tempDir('runmesh-artifact-get-');
    const out = join(dir, 'out.bin');
    await writeFile(out, 'older');
    const file = await receiveArtifact(answer(announced, body), await fileSink(out));
    expect(file.path).toBe('dist/out.bin');
    expect(await readFile(out)).toEqual(body);
    expect(await readdir(dir)).toEqual(['out.bin']);
  });

  it('keeps nothing when the bytes do not match, are short, or the stream fails', async () => {
    const dir = await tempDir('runmesh-artifact-get-');
    const out = join(dir, 'out.bin');
    await writeFile(out, 'older');
    const altered = Buffer.from(body);
    altered[0] = 0x42;
    await expect(receiveArtifact(answer(announced, altered), await fileSink(out))).rejects.toThrow(
      /dist\/out\.bin: its bytes hash to sha256 \w+, not the stored/,
    );
    await expect(receiveArtifact(answer(announced, body.subarray(1)), await fileSink(out))).rejects.toThrow(
      `${body.length - 1} of its ${body.length} bytes arrived`,
    );
    async function* broken(): AsyncGenerator<GetArtifactResponse> {
      yield* answer(announced, body.subarray(0, 4));
      throw new Error('stream broke');
    }
    await expect(receiveArtifact(broken(), await fileSink(out))).rejects.toThrow('stream broke');
    expect(await readFile(out, 'utf8')).toBe('older');
    expect(await readdir(dir)).toEqual(['out.bin']);
  });

  it('writes DIR/ or an existing directory as DIR/<basename>, and refuses a missing DIR/', async () => {
    const dir = await tempDir('runmesh-artifact-get-');
    await mkdir(join(dir, 'sub'));
    expect(await destinationFor(join(dir, 'sub'), 'dist/app.tar')).toBe(join(dir, 'sub', 'app.tar'));
    expect(await destinationFor(`${join(dir, 'sub')}/`, 'dist/app.tar')).toBe(join(dir, 'sub', 'app.tar'));
    expect(await destinationFor(join(dir, 'named.tar'), 'dist/app.tar')).toBe(join(dir, 'named.tar'));
    await expect(destinationFor(`${join(dir, 'none')}/`, 'app.tar')).rejects.toThrow(/no such directory/);
  });
});

describe('artifacts ls listing', () => {
  it('names the attempt, and says plainly when there is nothing or the upload failed', () => {
    const files = [announced, { path: 'report.xml', size: 2048n, sha256: 'ab'.repeat(32) }];
    expect(listing({ jobId: 'j_1', attempt: 2, files, error: '' }).split('\n')).toEqual([
      'job j_1, attempt 2: 2 files, 2.0 KiB',
      'PATH          SIZE     SHA256',
      `dist/out.bin  ${body.length} B     ${announced.sha256.slice(0, 12)}`,
      'report.xml    2.0 KiB  abababababab',
    ]);
    expect(listing({ jobId: 'j_1', attempt: 0, files: [], error: '' })).toBe('job j_1: no artifacts (no attempt stored any)');
    expect(listing({ jobId: 'j_1', attempt: 1, files: [], error: 'a.bin: over the per-file limit' })).toBe(
      'job j_1, attempt 1: no artifacts: the upload failed: a.bin: over the per-file limit',
    );
  });
});
