/** Which workspace files artifact globs name (links never followed), what each is, and the plan kept beside an attempt. */
import { createHash } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ArtifactsError, isArtifactsError } from './errors.js';
import { describeArtifact, findArtifacts, openArtifact, realRoot } from './find.js';
import { ArtifactPlans, planOf } from './plan.js';
import { nextStep, StepError, uploadArtifacts, type Step } from './upload.js';

let dir: string;
let work: string;
let outside: string;
let lines: Array<{ msg: string; path?: string }>;
const log = (): Logger =>
  pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(JSON.parse(chunk.toString()) as { msg: string; path?: string });
        done();
      },
    }),
  );

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rm-artifacts-'));
  work = join(dir, 'work');
  outside = join(dir, 'outside');
  lines = [];
  const files: Record<string, string> = {
    'dist/a.js': 'a',
    'dist/.hidden': 'h',
    'dist/sub/deep/b.js': 'b',
    'report.xml': '<r/>',
    'other.txt': 'o',
    'out/x.log': 'x',
    'out/deep/y.log': 'y',
    'reports/index.html': 'i',
  };
  for (const [p, content] of Object.entries(files)) {
    mkdirSync(join(work, p, '..'), { recursive: true });
    writeFileSync(join(work, p), content);
  }
  mkdirSync(join(outside, 'dir'), { recursive: true });
  writeFileSync(join(outside, 'shadow'), 'secret');
  writeFileSync(join(outside, 'dir', 'leak.txt'), 'secret');
  symlinkSync(join(outside, 'shadow'), join(work, 'dist', 'shadow'));
  symlinkSync(join(outside, 'dir'), join(work, 'dist', 'linked'));
  symlinkSync(join(outside, 'dir'), join(work, 'via'));
});

afterEach(() => rm(dir, { recursive: true, force: true }));

describe('findArtifacts', () => {
  it('takes regular files only: * within a directory, ** across, dot files, sorted and each once', async () => {
    const found = await findArtifacts(work, ['dist/**', 'report.xml', 'out/*.log', 'dist/*.js', 'reports', 'missing/**'], log());
    expect(found).toEqual(['dist/.hidden', 'dist/a.js', 'dist/sub/deep/b.js', 'out/x.log', 'report.xml']);
    expect(await findArtifacts(work, ['**/*.log'], log())).toEqual(['out/deep/y.log', 'out/x.log']);
  });

  it('never follows a symlink, to a file or a directory, and logs each one a glob names', async () => {
    const found = await findArtifacts(work, ['dist/**', 'via/leak.txt', 'via/*'], log());
    expect(found).not.toContain('dist/shadow');
    expect(found.some((p) => p.includes('leak'))).toBe(false);
    const skipped = lines.filter((l) => l.msg.startsWith('artifacts:')).map((l) => l.path);
    expect(skipped.sort()).toEqual(['dist/linked', 'dist/shadow', 'via']);
  });

  it("withholds the job's secret files whatever the globs, saying so", async () => {
    writeFileSync(join(work, 'dist', 'token'), 'secret');
    expect(await findArtifacts(work, ['dist/*'], log(), ['dist/token', 'not/matched'])).toEqual(['dist/.hidden', 'dist/a.js']);
    expect(lines.filter((l) => l.msg === 'artifacts: not uploading a secret file of the job').map((l) => l.path)).toEqual(['dist/token']);
  });

  it('refuses to open a link or read a file through one, and sizes and hashes a file as read', async () => {
    const root = await realRoot(work);
    const err = await openArtifact(root, 'dist/shadow').catch((e: unknown) => e);
    expect(isArtifactsError(err)).toBe(true);
    expect((err as Error).message).toMatch(/^dist\/shadow: cannot open: ELOOP/);
    const body = Buffer.alloc(3 * 1024 * 1024 + 5, 7);
    writeFileSync(join(work, 'big.bin'), body);
    expect(await describeArtifact(root, 'big.bin')).toEqual({
      path: 'big.bin',
      size: body.length,
      sha256: createHash('sha256').update(body).digest('hex'),
    });
  });
});

describe('the artifact plan', () => {
  it('is kept per attempt until dropped or swept, and only for a spec that names artifacts', () => {
    const plans = new ArtifactPlans(dir);
    expect(planOf({ artifacts: [], artifactsOptional: true })).toBeUndefined();
    const plan = planOf({ artifacts: ['dist/**'], artifactsOptional: true });
    plans.save('j_1/1', plan);
    plans.save('j_2/3', { globs: ['a'], optional: false, withheld: [] });
    plans.save('j_3/1', undefined);
    expect(new ArtifactPlans(dir).load('j_1/1')).toEqual({ globs: ['dist/**'], optional: true, withheld: [] });
    plans.save('j_5/1', planOf({ artifacts: ['**'], artifactsOptional: false }, [{ path: '.npmrc' }]));
    expect(plans.load('j_5/1')).toMatchObject({ withheld: ['.npmrc'] });
    expect(plans.load('j_3/1')).toBeUndefined();
    plans.sweep(new Set(['j_2/3']));
    expect(plans.load('j_5/1')).toBeUndefined();
    expect(plans.load('j_1/1')).toBeUndefined();
    expect(plans.load('j_2/3')).toEqual({ globs: ['a'], optional: false, withheld: [] });
    plans.drop('j_2/3');
    expect(plans.load('j_2/3')).toBeUndefined();
    writeFileSync(join(dir, 'artifacts', 'j_4.1.json'), '{"globs": "dist/**"}');
    expect(() => plans.load('j_4/1')).toThrow(/not one this agent wrote/);
  });
});

describe('what follows a failed upload call', () => {
  const failed = (step: Step, code: status): StepError =>
    new StepError(step, 'peer said no', { cause: Object.assign(new Error('peer said no'), { code }) });

  it("gives up quietly only when Begin says the attempt is not this agent's, and takes limits and bad input as the error", () => {
    expect(nextStep(failed('begin', status.FAILED_PRECONDITION))).toBe('gone');
    expect(nextStep(failed('upload', status.FAILED_PRECONDITION))).toBe('again'); // an offset the peer does not hold: Begin again
    expect(nextStep(failed('commit', status.FAILED_PRECONDITION))).toBe('again');
    expect(nextStep(failed('begin', status.RESOURCE_EXHAUSTED))).toBe('refused');
    expect(nextStep(failed('begin', status.INVALID_ARGUMENT))).toBe('refused');
    expect(nextStep(failed('begin', status.UNIMPLEMENTED))).toBe('refused');
    expect(nextStep(failed('upload', status.DATA_LOSS))).toBe('reread');
    expect(nextStep(failed('upload', status.UNAVAILABLE))).toBe('again');
    expect(nextStep(failed('commit', status.DEADLINE_EXCEEDED))).toBe('again');
    expect(nextStep(new ArtifactsError('big.bin: cannot open: EACCES'))).toBe('refused');
    expect(nextStep(new StepError('upload', 'the peer holds 3 of its 5 bytes after the upload'))).toBe('again');
  });
});

describe('a manifest too large for the control plane', () => {
  it('fails the upload naming the file count and sizes, before any call', async () => {
    // 1200 paths of about 3.7 KB: a 4.5 MB manifest, over the 4 MiB a control plane takes.
    const deep = join(work, 'many', ...Array.from({ length: 14 }, (_, i) => String(i).padEnd(250, 'x')));
    mkdirSync(deep, { recursive: true });
    for (let i = 0; i < 1200; i++) writeFileSync(join(deep, `${String(i).padStart(200, '0')}.txt`), '');
    let called = false;
    const links = {
      live: () => ((called = true), Promise.reject(new Error('no call was expected'))),
      metadata: () => {
        throw new Error('no call was expected');
      },
    };
    const outcome = await uploadArtifacts({
      jobId: 'j_1',
      attempt: 1,
      workspace: work,
      plan: { globs: ['many/**'], optional: false, withheld: [] },
      links,
      log: log(),
      signal: new AbortController().signal,
    });
    expect(called).toBe(false);
    expect(outcome).toEqual({
      error: expect.stringMatching(
        /^the list of the 1200 matching files takes 4\.\d MiB, over the 4\.0 MiB a control plane takes: match fewer files/,
      ) as unknown,
      unmatched: false,
    });
  });
});
