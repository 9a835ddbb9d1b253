/**
 * The built `runmesh` binary as operators run it: a real process, talking to a
 * real gRPC server on port 0 that stands in for the control plane (a boundary
 * fake: scripted JobService handlers, nothing of ours mocked).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Server, ServerCredentials, type ServerUnaryCall, type ServerWritableStream, type sendUnaryData, status } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  FailureCategory,
  Job,
  JobServiceService,
  JobState,
  type ListRequest,
  type LogsRequest,
  LogStream,
  type SubmitRequest,
} from '../proto/gen/runmesh/v1/job.js';
import { sleep, waitUntil, within } from '../test/support/wait.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'runmesh.js');
const RUN_TIMEOUT_MS = 45_000;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

const children = new Set<ChildProcess>();

function run(args: string[], env: Record<string, string> = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, ...env } });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Spawns the binary with its stdout or stderr pipe closed on our side before it writes anything (the reader went away). */
function runWithClosedPipe(
  args: string[],
  which: 'stdout' | 'stderr',
): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, RUNMESH_LOG_LEVEL: 'info' } });
  children.add(child);
  child[which].destroy();
  let output = '';
  const other = which === 'stdout' ? child.stderr : child.stdout;
  other.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

function expectOneLine(stderr: string, pattern: RegExp): void {
  const lines = stderr.split('\n').filter(Boolean);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(stderr).not.toMatch(/\n\s+at /); // no stack trace
}

async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const address = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

beforeAll(() => {
  // `npm test` builds first. Building here too rewrote dist/ under the processes other files were starting.
  if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is not built: run npm run build (npm test does)');
});

afterEach(() => {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
});

describe('runmesh without a control plane', () => {
  it('says the control plane is unreachable in one line, exit 1', async () => {
    const port = await closedPort();
    const res = await run(['jobs', 'ls', '--server', `127.0.0.1:${port}`]);
    expect(res.code).toBe(1);
    expectOneLine(
      res.stderr,
      new RegExp(
        `^runmesh: cannot reach the control plane at 127\\.0\\.0\\.1:${port} \\(is \`runmesh server\` or \`runmesh dev\` running\\?\\)$`,
      ),
    );
    expect(res.stdout).toBe('');
  });

  it('refuses a --server that is not an address as a usage error, naming the flag, exit 2', async () => {
    const res = await run(['jobs', 'ls', '--server', 'ftp://cp:21']);
    expect(res.code).toBe(2);
    expectOneLine(res.stderr, /^runmesh: --server: .*unknown scheme "ftp"/);
  });

  it('rejects submit without a command as a usage error, exit 2', async () => {
    const res = await run(['submit']);
    expect(res.code).toBe(2);
    expectOneLine(res.stderr, /^runmesh: nothing to run: give a command after --/);
  });

  it('turns commander errors into one line, exit 2', async () => {
    const res = await run(['jobs', 'ls', '--no-such-flag']);
    expect(res.code).toBe(2);
    expectOneLine(res.stderr, /^runmesh: unknown option '--no-such-flag'/);
    const bad = await run(['submit', '--retries', 'many', '--', 'true']);
    expect(bad.code).toBe(2);
    expectOneLine(bad.stderr, /^runmesh: --retries: expected a whole number/);
  });

  it('rejects a bad listen address, HTTP port or tenant weight before starting anything, naming the flag', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['server', '--listen', 'garbage'], /^runmesh: --listen: invalid transport address "garbage"/],
      [
        ['server', '--http-listen', '127.0.0.1:99999'],
        /^runmesh: --http-listen: expected host:port with a port from 0 to 65535, got "127.0.0.1:99999"$/,
      ],
      [['server', '--tenant-weight', 'a=b'], /^runmesh: --tenant-weight: a=b: the weight must be a positive number$/],
      [['agent', '--join-token', 't', '--server', '127.0.0.1:1,::::'], /^runmesh: --server: invalid transport address "::::"/],
      [['dev', '--listen', 'nope'], /^runmesh: --listen: invalid transport address "nope"/],
    ];
    for (const [args, message] of cases) {
      const res = await run(args);
      expect(res.code, args.join(' ')).toBe(2);
      expectOneLine(res.stderr, message);
    }
  });

  it('names the log level flag, or its variable, when the level is not one pino knows', async () => {
    const flag = await run(['server', '--log-level', 'loud']);
    expect(flag.code).toBe(2);
    expectOneLine(flag.stderr, /^runmesh: --log-level: expected one of trace\|debug\|info\|warn\|error\|fatal\|silent, got "loud"$/);
    const env = await run(['agent', '--join-token', 't', '--server', '127.0.0.1:1'], { RUNMESH_LOG_LEVEL: 'verbose' });
    expect(env.code).toBe(2);
    expectOneLine(env.stderr, /^runmesh: --log-level \(or RUNMESH_LOG_LEVEL\): expected one of .*, got "verbose"$/);
  });

  it('keeps a server running when the reader of its stderr goes away, and stops it cleanly on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'runmesh-cli-pipe-'));
    try {
      const [grpcPort, httpPort] = [await closedPort(), await closedPort()];
      const s = runWithClosedPipe(
        ['server', '--listen', `127.0.0.1:${grpcPort}`, '--http-listen', `127.0.0.1:${httpPort}`, '--data-dir', dir],
        'stderr',
      );
      const healthy = async (): Promise<boolean> =>
        (await fetch(`http://127.0.0.1:${httpPort}/healthz`).catch(() => undefined))?.ok ?? false;
      // Bounded: up to 30 s for a busy runner to start it.
      await waitUntil(healthy, { what: 'the server to answer /healthz', timeoutMs: 30_000, intervalMs: 100 });
      expect(await healthy()).toBe(true);
      // Its start-up lines went to the closed pipe; before, the first one ended the process with an EPIPE stack trace.
      await sleep(500); // deliberate: time for that to happen again, which it must not
      expect(s.child.exitCode).toBeNull();
      expect(await healthy()).toBe(true);
      s.child.kill('SIGTERM');
      expect(await within(s.exited, { what: 'server exit after SIGTERM', timeoutMs: 15_000 })).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('prints the package version', async () => {
    const res = await run(['--version']);
    expect(res.code).toBe(0);
    expect(res.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });
});

/** A scripted JobService: each test sets the handlers it needs; the rest answer UNIMPLEMENTED. */
class FakeControlPlane {
  private server: Server | undefined;
  port = 0;
  submits: SubmitRequest[] = [];
  logRequests: LogsRequest[] = [];
  listRequests: ListRequest[] = [];
  getJob: (id: string) => Job | undefined = () => undefined;
  logs: (req: LogsRequest, call: ServerWritableStream<LogsRequest, unknown>) => void = (_req, call) => call.end();
  list: (pageToken: string, pageSize: number) => { jobs: Job[]; nextPageToken: string } = () => ({ jobs: [], nextPageToken: '' });
  cancel: (id: string) => Job | undefined = () => undefined;

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(port = 0): Promise<void> {
    const server = new Server();
    const unimplemented = (_call: unknown, cb: sendUnaryData<never>): void => cb({ code: status.UNIMPLEMENTED });
    server.addService(JobServiceService, {
      submit: (call: ServerUnaryCall<SubmitRequest, unknown>, cb: sendUnaryData<unknown>) => this.submit(call, cb),
      get: (call: ServerUnaryCall<{ id: string }, unknown>, cb: sendUnaryData<unknown>) => {
        const job = this.getJob(call.request.id);
        if (job) cb(null, { job });
        else cb({ code: status.NOT_FOUND, details: `job ${call.request.id} not found` });
      },
      list: (call: ServerUnaryCall<ListRequest, unknown>, cb: sendUnaryData<unknown>) => {
        this.listRequests.push(call.request);
        cb(null, this.list(call.request.pageToken, call.request.pageSize));
      },
      logs: (call: ServerWritableStream<LogsRequest, unknown>) => {
        this.logRequests.push(call.request);
        this.logs(call.request, call);
      },
      submitBatch: unimplemented,
      cancel: (call: ServerUnaryCall<{ id: string }, unknown>, cb: sendUnaryData<unknown>) => {
        const job = this.cancel(call.request.id);
        if (job) cb(null, { job });
        else cb({ code: status.NOT_FOUND, details: `job ${call.request.id} not found` });
      },
      watch: (call: ServerWritableStream<unknown, unknown>) => call.emit('error', { code: status.UNIMPLEMENTED }),
    });
    this.port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))),
    );
    this.server = server;
  }

  /** Drops every connection and open stream at once, as a crashed control plane would. */
  crash(): void {
    this.server?.forceShutdown();
    this.server = undefined;
  }

  private submit(call: ServerUnaryCall<SubmitRequest, unknown>, cb: sendUnaryData<unknown>): void {
    this.submits.push(call.request);
    if (call.request.spec?.argv[0] === 'bad') {
      cb({ code: status.INVALID_ARGUMENT, details: 'spec.argv: "bad" is not allowed' });
      return;
    }
    cb(null, { job: job({ id: 'j_1', state: JobState.JOB_STATE_QUEUED }), existing: false });
  }
}

function job(patch: Parameters<typeof Job.fromPartial>[0]): Job {
  return Job.fromPartial({ spec: { argv: ['x'] }, ...patch });
}

function record(attempt: number, seq: number, stream: LogStream, text: string): object {
  return { attempt, seq, stream, data: Buffer.from(text) };
}

describe('runmesh against a gRPC control plane', () => {
  const fakes: FakeControlPlane[] = [];
  async function fake(port = 0): Promise<FakeControlPlane> {
    const f = new FakeControlPlane();
    await f.start(port);
    fakes.push(f);
    return f;
  }
  afterAll(() => fakes.forEach((f) => f.crash()));

  it('submit --wait streams the output and exits with the job exit code', async () => {
    const cp = await fake();
    cp.logs = (_req, call) => {
      call.write(record(1, 0, LogStream.LOG_STREAM_STDOUT, 'hello from stdout\n'));
      call.write(record(1, 1, LogStream.LOG_STREAM_STDERR, 'oops on stderr\n'));
      call.end();
    };
    cp.getJob = (id) =>
      job({ id, state: JobState.JOB_STATE_FAILED, attempt: 1, failure: FailureCategory.FAILURE_CATEGORY_EXIT_CODE, exitCode: 3 });
    const res = await run(['submit', '--wait', '--retries', '2', '--label', 'os=linux', '--', 'x', '--flag'], {
      RUNMESH_SERVER: cp.address,
    });
    expect(res).toEqual({ code: 3, stdout: 'hello from stdout\n', stderr: 'oops on stderr\n' });
    expect(cp.submits[0]?.spec).toMatchObject({ argv: ['x', '--flag'], maxAttempts: 3, selector: 'os=linux' });
    expect(cp.logRequests[0]).toMatchObject({ id: 'j_1', attempt: 0, fromSeq: 0, follow: true });
  });

  it('submit --wait exits 130 for a cancelled job, saying the state once', async () => {
    const cp = await fake();
    cp.getJob = (id) =>
      job({
        id,
        state: JobState.JOB_STATE_CANCELLED,
        attempt: 1,
        failure: FailureCategory.FAILURE_CATEGORY_CANCELLED,
        attempts: [{ number: 1, failure: FailureCategory.FAILURE_CATEGORY_CANCELLED, message: 'cancelled: by alice' }],
      });
    const res = await run(['submit', '--wait', '--', 'x'], { RUNMESH_SERVER: cp.address });
    expect(res).toEqual({ code: 130, stdout: '', stderr: 'runmesh: job j_1 cancelled (by alice)\n' });
  });

  it('submit prints the job id, or the job as JSON', async () => {
    const cp = await fake();
    const plain = await run(['submit', '--', 'true'], { RUNMESH_SERVER: cp.address });
    expect(plain).toEqual({ code: 0, stdout: 'j_1\n', stderr: '' });
    const json = await run(['submit', '--json', '--', 'true'], { RUNMESH_SERVER: cp.address });
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ id: 'j_1', state: 'JOB_STATE_QUEUED' });
  });

  it('maps NOT_FOUND and INVALID_ARGUMENT to one line each', async () => {
    const cp = await fake();
    const missing = await run(['jobs', 'get', 'j_nope', '--server', cp.address]);
    expect(missing.code).toBe(1);
    expectOneLine(missing.stderr, /^runmesh: job j_nope not found$/);
    const invalid = await run(['submit', '--server', cp.address, '--', 'bad']);
    expect(invalid.code).toBe(1);
    expectOneLine(invalid.stderr, /^runmesh: invalid request: spec\.argv: "bad" is not allowed$/);
  });

  it('jobs ls pages through List up to --limit and prints a JSON array', async () => {
    const cp = await fake();
    const pages: [string, number][] = [];
    cp.list = (token, size) => {
      pages.push([token, size]);
      const n = token === '' ? 2 : 5;
      return { jobs: Array.from({ length: n }, (_, i) => job({ id: `j_${token}${i}` })), nextPageToken: `p${pages.length}` };
    };
    const res = await run(['jobs', 'ls', '--json', '--limit', '3', '--state', 'running', '--server', cp.address]);
    expect(res.code).toBe(0);
    expect((JSON.parse(res.stdout) as { id: string }[]).map((j) => j.id)).toEqual(['j_0', 'j_1', 'j_p10']);
    // The third call counts what lies beyond the jobs shown (up to 100); this server always has a next page.
    expect(pages).toEqual([
      ['', 3],
      ['p1', 1],
      ['j_p10', 100],
    ]);
    expect(res.stderr).toBe('over 5 more jobs match than the 3 shown: raise --limit, or --all\n');
    const human = await run(['jobs', 'ls', '--limit', '2', '--server', cp.address]);
    expect(human.stdout.split('\n')[0]).toMatch(/^ID\s+NAME\s+STATE\s+ATTEMPT/);
    cp.list = (token) =>
      token === ''
        ? { jobs: [job({ id: 'j_a' }), job({ id: 'j_b' })], nextPageToken: 'j_b' }
        : { jobs: [job({ id: 'j_c' })], nextPageToken: '' };
    const all = await run(['jobs', 'ls', '--all', '--json', '--server', cp.address]);
    expect((JSON.parse(all.stdout) as { id: string }[]).map((j) => j.id)).toEqual(['j_a', 'j_b', 'j_c']);
    expect(all.stderr).toBe('');
    expect((await run(['jobs', 'ls', '--limit', '2', '--server', cp.address])).stderr).toBe(
      '1 more job matches than the 2 shown: raise --limit, or --all\n',
    );
    // A token with nothing after it (List stopped at its page size): no line.
    cp.list = (token) => (token === '' ? { jobs: [job({ id: 'j_a' })], nextPageToken: 'j_a' } : { jobs: [], nextPageToken: '' });
    expect((await run(['jobs', 'ls', '--limit', '1', '--server', cp.address])).stderr).toBe('');
    expect(cp.listRequests.at(-1)).toMatchObject({ oldestFirst: false, labels: '', createdAfter: undefined });
  });

  it('jobs ls passes its filters and order to List, and names a bad time', async () => {
    const cp = await fake();
    const since = Date.now() - 3_600_000;
    const res = await run([
      ...['jobs', 'ls', '--label', 'os=linux', '--label', 'gpu', '--oldest-first'],
      ...['--since', '1h', '--until', '2026-12-01T08:00:00Z', '--server', cp.address],
    ]);
    expect(res).toMatchObject({ code: 0, stderr: '' });
    const req = cp.listRequests[0]!;
    expect(req).toMatchObject({ labels: 'os=linux,gpu', oldestFirst: true, createdBefore: '2026-12-01T08:00:00.000Z' });
    expect(Math.abs(Date.parse(req.createdAfter!) - since)).toBeLessThan(30_000);
    const bad = await run(['jobs', 'ls', '--since', 'yesterday', '--server', cp.address]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^runmesh: --since: expected an ISO time .* got "yesterday"\n$/);
  });

  it('logs --json and jobs cancel --json print JSON on stdout', async () => {
    const cp = await fake();
    cp.getJob = (id) => job({ id, state: JobState.JOB_STATE_SUCCEEDED, attempt: 1 });
    cp.logs = (_req, call) => {
      call.write(record(1, 0, LogStream.LOG_STREAM_STDOUT, 'hi\n'));
      call.write(record(1, 1, LogStream.LOG_STREAM_STDERR, '\xff'));
      call.write({ attempt: 1, seq: 2, stream: LogStream.LOG_STREAM_STDERR, data: Buffer.from([0xff]) });
      call.end();
    };
    const logs = await run(['logs', '--json', 'j_1', '--server', cp.address]);
    expect(logs.code).toBe(0);
    expect(logs.stderr).toBe('');
    expect(
      logs.stdout
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as unknown),
    ).toEqual([
      { attempt: 1, seq: 0, stream: 'stdout', text: 'hi\n' },
      { attempt: 1, seq: 1, stream: 'stderr', text: '\xff' },
      { attempt: 1, seq: 2, stream: 'stderr', base64: '/w==' },
    ]);
    cp.cancel = (id) => job({ id, state: JobState.JOB_STATE_CANCELLED });
    const cancel = await run(['jobs', 'cancel', '--json', 'j_1', '--server', cp.address]);
    expect(cancel.code).toBe(0);
    expect(JSON.parse(cancel.stdout)).toMatchObject({ id: 'j_1', state: 'JOB_STATE_CANCELLED' });
  });

  it('jobs cancel waits for a running job to end and prints the state it ended in', async () => {
    const cp = await fake();
    cp.cancel = (id) => job({ id, state: JobState.JOB_STATE_RUNNING, attempt: 1 });
    let gets = 0;
    cp.getJob = (id) =>
      ++gets < 3
        ? job({ id, state: JobState.JOB_STATE_RUNNING, attempt: 1 })
        : job({
            id,
            state: JobState.JOB_STATE_CANCELLED,
            failure: FailureCategory.FAILURE_CATEGORY_CANCELLED,
            attempts: [{ number: 1, failure: FailureCategory.FAILURE_CATEGORY_CANCELLED, message: 'cancelled: by alice' }],
          });
    const waited = await run(['jobs', 'cancel', 'j_1', '--server', cp.address]);
    expect(waited).toEqual({ code: 0, stdout: 'j_1 cancelled (by alice)\n', stderr: '' });
    const now = await run(['jobs', 'cancel', '--no-wait', 'j_1', '--server', cp.address]);
    expect(now).toEqual({ code: 0, stdout: 'j_1 running (cancel requested)\n', stderr: '' });
  });

  it('jobs cancel shows a spinner on a terminal while it waits, wiped before its line', async () => {
    const cp = await fake();
    cp.cancel = (id) => job({ id, state: JobState.JOB_STATE_RUNNING, attempt: 1 });
    // Running until the spinner (drawn after 1 s) has had time to show: a dozen polls of 200 ms.
    let gets = 0;
    cp.getJob = (id) =>
      ++gets < 12
        ? job({ id, state: JobState.JOB_STATE_RUNNING, attempt: 1 })
        : job({ id, state: JobState.JOB_STATE_CANCELLED, failure: FailureCategory.FAILURE_CATEGORY_CANCELLED });
    // util-linux script(1) gives the CLI a pseudo-terminal for stdout and stderr alike.
    const line = [process.execPath, BIN, 'jobs', 'cancel', 'j_1', '--server', cp.address].join(' ');
    const res = await new Promise<Result>((resolve, reject) => {
      const child = spawn('script', ['-qfec', line, '/dev/null'], { cwd: ROOT, env: { ...process.env, TERM: 'xterm', CI: '' } });
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr: '' }));
    });
    expect(res.code).toBe(0);
    // Frames, each drawn over the last, then the line wiped once more before the result.
    const parts = res.stdout.split('\r\x1b[K');
    expect(parts[0]).toBe('');
    expect(parts.at(-1)).toBe('j_1 cancelled\r\n');
    const frames = parts.slice(1, -1);
    expect(frames.length).toBeGreaterThan(0);
    expect(frames.filter((f) => !/^[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] waiting for j_1 to end$/.test(f))).toEqual([]);
  });

  it('logs -f stops quietly when the reader of its stdout goes away', async () => {
    const cp = await fake();
    cp.getJob = (id) => job({ id, state: JobState.JOB_STATE_RUNNING, attempt: 1 });
    let written = 0;
    cp.logs = (_req, call) => {
      // A job that keeps printing (bounded: 200 records over 10 s) while nobody reads the command's output.
      const timer = setInterval(() => {
        if (call.cancelled || written === 200) {
          clearInterval(timer);
          return void call.end();
        }
        call.write(record(1, written, LogStream.LOG_STREAM_STDOUT, `line ${written++}\n`));
      }, 50);
      call.on('cancelled', () => clearInterval(timer));
    };
    const f = runWithClosedPipe(['logs', '-f', 'j_1', '--server', cp.address], 'stdout');
    expect(await within(f.exited, { what: 'logs -f exit', timeoutMs: 8_000 })).toBe(0);
    expect(written).toBeLessThan(200);
    expect(f.output()).toBe('');
  });

  it('logs -f resumes from the last record after a control-plane crash and follows the retry', async () => {
    const first = await fake();
    first.getJob = (id) => job({ id, state: JobState.JOB_STATE_RUNNING, attempt: 1 });
    let crashed = false;
    first.logs = (_req, call) => {
      call.write(record(1, 0, LogStream.LOG_STREAM_STDOUT, 'a\n'));
      // Crash once the record is surely on the wire; the stream never ends cleanly.
      setTimeout(() => {
        first.crash();
        crashed = true;
      }, 300);
    };
    const child = run(['logs', '-f', 'j_1', '--server', first.address]);
    // Wait (bounded) for the crash, then bring a new control plane up on the same address (once the old one has let go of it).
    await waitUntil(() => crashed, { what: 'the first control plane to crash', timeoutMs: 15_000 });
    const second = await waitUntil(() => fake(first.port), { what: `a new control plane on port ${first.port}`, timeoutMs: 5_000 });
    let attempt = 1;
    second.getJob = (id) =>
      attempt === 1
        ? job({ id, state: JobState.JOB_STATE_QUEUED, attempt: (attempt = 2) })
        : job({ id, state: JobState.JOB_STATE_SUCCEEDED, attempt: 2 });
    second.logs = (req, call) => {
      if (req.attempt === 1) call.write(record(1, 1, LogStream.LOG_STREAM_STDOUT, 'b\n'));
      if (req.attempt === 2) call.write(record(2, 0, LogStream.LOG_STREAM_STDOUT, 'retry\n'));
      call.end();
    };
    const res = await child;
    expect(res).toEqual({ code: 0, stdout: 'a\nb\nretry\n', stderr: '' });
    expect(second.logRequests.map((r) => [r.attempt, r.fromSeq])).toEqual([
      [1, 1],
      [2, 0],
    ]);
  });
});
