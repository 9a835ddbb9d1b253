/**
 * Reading artifacts with the real CLI, against a real `runmesh server` and
 * `runmesh agent`: `artifacts ls` and `artifacts get` (to stdout and to a
 * file) give back the uploaded bytes unchanged; `jobs get` says what was
 * uploaded. Then a pipeline whose second job fetches its need's artifact with
 * `artifacts get --from` and its own job token, and finds another job's
 * artifacts NOT_FOUND with that token.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobState } from '../proto/gen/runmesh/v1/job.js';
import { adminToken, bigintSafe, TestClient } from './support/client.js';
import { CLI, startAgent, startServer, stopAll, tempDir } from './support/processes.js';

interface CliResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

let client: TestClient;
let address = '';
let token = '';
let dir = '';

/** The environment the CLI runs in: this server, the admin token, no colour or logs. */
const cliEnv = (): NodeJS.ProcessEnv => ({
  ...process.env,
  NO_COLOR: '1',
  RUNMESH_SERVER: address,
  RUNMESH_TOKEN: token,
  RUNMESH_LOG_LEVEL: 'silent',
});

/** The CLI as a user runs it against the server: exit code, stdout as bytes (an artifact may be binary), stderr. */
function cli(args: string[]): Promise<CliResult> {
  return new Promise((resolve) =>
    execFile(process.execPath, [CLI, ...args], { env: cliEnv(), encoding: 'buffer', maxBuffer: 8 << 20 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr: stderr.toString() }),
    ),
  );
}

/** The CLI with its stdout on a terminal (a pty from util-linux `script`): exit code and what the terminal showed. */
function onTerminal(args: string[]): Promise<{ code: number; shown: string }> {
  const command = [process.execPath, CLI, ...args].map((a) => `'${a}'`).join(' ');
  return new Promise((resolve) =>
    execFile('script', ['-qec', command, '/dev/null'], { env: cliEnv() }, (err, stdout) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, shown: stdout.replace(/\r\n/g, '\n') }),
    ),
  );
}

/** `runmesh ARGS` as a job's script runs it, with the job's own environment (RUNMESH_SERVER, RUNMESH_JOB_TOKEN). */
const rm = (args: string): string => `"${process.execPath}" "${CLI}" ${args}`;

beforeAll(async () => {
  const server = await startServer();
  address = server.address;
  token = adminToken(server.dataDir);
  client = new TestClient(address, token);
  await startAgent(address, { name: 'artifacts-read' });
  await client.waitAgents(1);
  dir = await tempDir('runmesh-artifacts-read-');
}, 60_000);

afterAll(async () => {
  client?.close();
  await stopAll();
});

describe('artifacts ls and get', () => {
  it('list the stored files and give their bytes back unchanged, to stdout and to a file', async () => {
    // 600 KiB of random bytes (three chunks on the wire) and a small text file in a subdirectory; a third file matches no glob.
    const script = [
      'mkdir -p dist/sub',
      'head -c 614400 /dev/urandom > dist/blob.bin',
      'echo "report of $RUNMESH_JOB_ID" > dist/sub/report.txt',
      'echo ignored > notes.txt',
      `cp dist/blob.bin ${dir}/blob.orig`,
    ].join(' && ');
    const job = await client.waitDone((await client.submit({ script, artifacts: ['dist/**'] })).id);
    expect(job.state, JSON.stringify(job.attempts, bigintSafe)).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect(job.attempts[0]?.artifacts).toMatchObject({ files: 2, bytes: 614400n + BigInt(`report of ${job.id}\n`.length), error: '' });

    const ls = await cli(['artifacts', 'ls', job.id]);
    expect(ls.stderr).toBe('');
    const lines = ls.stdout.toString().trim().split('\n');
    expect(lines[0]).toBe(`job ${job.id}, attempt 1: 2 files, 600.0 KiB`);
    expect(
      lines
        .slice(2)
        .map((l) => l.split(/\s+/)[0])
        .sort(),
    ).toEqual(['dist/blob.bin', 'dist/sub/report.txt']);
    const listed = JSON.parse((await cli(['artifacts', 'ls', job.id, '--json'])).stdout.toString()) as {
      attempt: number;
      files: Array<{ path: string; size: number }>;
    };
    expect(listed.attempt).toBe(1);
    expect(listed.files.find((f) => f.path === 'dist/blob.bin')?.size).toBe(614400);

    const original = await readFile(join(dir, 'blob.orig'));
    const toFile = await cli(['artifacts', 'get', job.id, 'dist/blob.bin', '-o', `${dir}/`]);
    expect([toFile.code, toFile.stderr]).toEqual([0, '']);
    expect((await readFile(join(dir, 'blob.bin'))).equals(original)).toBe(true);
    const toStdout = await cli(['artifacts', 'get', job.id, 'dist/sub/report.txt']);
    expect(toStdout.stdout.toString()).toBe(`report of ${job.id}\n`);

    // To a terminal: text is shown, binary refused unless -o - insists.
    expect(await onTerminal(['artifacts', 'get', job.id, 'dist/sub/report.txt'])).toEqual({ code: 0, shown: `report of ${job.id}\n` });
    const binary = await onTerminal(['artifacts', 'get', job.id, 'dist/blob.bin']);
    expect(binary.code).toBe(2);
    expect(binary.shown).toMatch(/the artifact is binary and stdout is a terminal: use -o FILE, or -o - to write it here anyway/);

    const missing = await cli(['artifacts', 'get', job.id, 'notes.txt', '-o', join(dir, 'notes.txt')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(new RegExp(`runmesh: artifact notes\\.txt of job ${job.id} not found`));
    const shown = await cli(['jobs', 'get', job.id]);
    expect(shown.stdout.toString()).toMatch(/^artifacts:\s+dist\/\*\*$/m);
    expect(shown.stdout.toString()).toMatch(/^uploaded:\s+2 files, 600\.\d KiB \(attempt 1;/m);
  }, 60_000);
});

describe('artifacts get --from, inside a pipeline', () => {
  it("fetches a need's artifact with the job token, and finds another job's not found", async () => {
    const other = await client.waitDone((await client.submit({ script: 'echo secret > o.txt', artifacts: ['o.txt'] })).id);
    expect(other.attempts[0]?.artifacts?.files).toBe(1);
    const test = [
      `${rm('artifacts get --from build out.txt -o got.txt')} && cat got.txt`,
      `if ${rm(`artifacts ls ${other.id}`)} --token "$RUNMESH_JOB_TOKEN" 2> other.err; then echo other-read; else cat other.err; fi`,
      `if ${rm('artifacts ls --from nobody')} 2> nobody.err; then echo nobody-read; else cat nobody.err; fi`,
    ].join('\n');
    const file = join(dir, 'pipeline.yaml');
    await writeFile(
      file,
      [
        'jobs:',
        '  build:',
        `    script: ${JSON.stringify('echo "built by $RUNMESH_JOB_ID" > out.txt')}`,
        '    artifacts: [out.txt]',
        '  test:',
        '    needs: [build]',
        `    script: ${JSON.stringify(test)}`,
        '',
      ].join('\n'),
    );
    const submitted = await cli(['submit', '-f', file, '--wait']);
    expect(submitted.code, submitted.stderr).toBe(0);
    const listed = (await cli(['jobs', 'ls', '--name-prefix', 'build', '--json'])).stdout.toString();
    const build = (JSON.parse(listed) as Array<{ id: string }>)[0]!.id;
    const testJob = (
      JSON.parse((await cli(['jobs', 'ls', '--name-prefix', 'test', '--json'])).stdout.toString()) as Array<{ id: string }>
    )[0]!;
    const out = (await client.logs(testJob.id)).stdout;
    expect(out).toContain(`built by ${build}`);
    expect(out).toMatch(new RegExp(`runmesh: job ${other.id} not found`));
    expect(out).toMatch(/runmesh: need nobody of job j_\w+ not found \(it needs build\)/);
    expect(out).not.toMatch(/other-read|nobody-read/);
  }, 60_000);
});
