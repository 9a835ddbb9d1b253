/**
 * Secrets end to end (issue 18), with real processes: a control plane with a
 * secrets key file, a real agent, and the built CLI. Values go in through
 * `runmesh secrets set` (stdin and --from-file), jobs get them in env and in
 * a file, and every way the job prints them (split across two writes, each
 * line of a multi-line value, base64, percent and JSON escapes) reaches the
 * log masked. No value is in any API answer, the store's files, or the
 * control plane's or agent's output (at debug level). Another tenant cannot
 * reference one. Rotation: restarted with a new key and the old one as
 * previous, rotate-key re-encrypts, and restarted with the new key alone the
 * jobs still get their values.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobState, type Job, type ListResponse } from '../proto/gen/runmesh/v1/job.js';
import { adminToken, bigintSafe, TestClient } from './support/client.js';
import { freePort } from './support/etcd.js';
import { sign } from '../control-plane/hooks/signature.js';
import { CLI, startAgent, startServer, stopAll, tempDir, type AgentProc, type ServerProc } from './support/processes.js';

const TOKEN_A = `tokA-${randomBytes(9).toString('hex')}`;
const PEM_LINE = randomBytes(30).toString('base64');
const PEM = `-----BEGIN TEST KEY-----\n${PEM_LINE}\n${randomBytes(30).toString('base64')}\n-----END TEST KEY-----\n`;
const WEIRD = `p@ss w/rd+${randomBytes(4).toString('hex')}=y "q" \\z`;
const VALUES = [TOKEN_A, PEM_LINE, WEIRD];

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

let dir: string;
let keyOld: string;
let keyNew: string;
let port: number;
let server: ServerProc;
let agent: AgentProc;
let admin: string;
let tokenA: string;
let tokenB: string;
const outputs: string[] = [];

function cli(args: string[], token: string, input?: string): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [CLI, ...args, '--server', server.address], {
    input,
    encoding: 'utf8',
    env: { ...process.env, RUNMESH_TOKEN: token, RUNMESH_LOG_LEVEL: 'silent' },
  });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

/** A new token's secret, from `tokens create --json`. */
function newToken(role: string, tenant: string): string {
  const out = cli(['tokens', 'create', '--role', role, '--tenant', tenant, '--json'], admin).out;
  return (JSON.parse(out.slice(out.indexOf('{'))) as { token: string }).token;
}

/** The agent connected (ListAgents is an admin's, not a submitter's). */
async function waitAgent(): Promise<void> {
  const c = new TestClient(server.address, admin);
  try {
    await c.waitAgents(1, 30_000);
  } finally {
    c.close();
  }
}

async function start(args: string[]): Promise<void> {
  server = await startServer({ dataDir: dir, listen: `127.0.0.1:${port}`, args: ['--log-level', 'debug', ...args] });
}

async function stopServer(): Promise<void> {
  outputs.push(server.output());
  await server.stop();
}

/** Every file under `d`. */
async function filesUnder(d: string): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (const e of await readdir(d, { recursive: true })) {
    const p = join(d, e);
    if ((await stat(p)).isFile()) out.push(await readFile(p));
  }
  return out;
}

const SCRIPT = [
  'printf "env:%s\\n" "$(printf %s "$TOKEN_A" | sha256sum | cut -c1-64)"',
  'printf "file:%s\\n" "$(sha256sum keys/test.pem | cut -c1-64)"',
  'echo "plain $TOKEN_A end"',
  // Split across two writes (and so two spool records), a moment apart.
  'printf "split %s" "$(printf %s "$TOKEN_A" | head -c 7)"; sleep 0.3; printf "%s end\\n" "$(printf %s "$TOKEN_A" | tail -c +8)"',
  'echo "line $(sed -n 2p keys/test.pem) end"',
  'cat keys/test.pem',
  'echo "b64 $(printf %s "$TOKEN_A" | base64 -w0) end"',
  'echo "basic $(printf "user:%s" "$TOKEN_A" | base64 -w0) end"',
  `echo "url $(printf %s "$WEIRD" | sed 's/%/%25/g; s/@/%40/g; s/ /%20/g; s|/|%2F|g; s/+/%2B/g; s/=/%3D/g; s/"/%22/g; s/\\\\/%5C/g') end"`,
  // printf, not echo: dash's echo reads backslashes as escapes.
  'printf "json %s end\\n" "$(printf %s "$WEIRD" | sed -e \'s/\\\\/\\\\\\\\/g\' -e \'s/"/\\\\"/g\')"',
  'echo "stderr $TOKEN_A" >&2',
  // Progress lines are parsed after masking: the annotations hold *** too.
  'echo "::notice token $TOKEN_A end"',
  'echo "::warning file $TOKEN_A end" >> "$RUNMESH_PROGRESS"',
].join('\n');

beforeAll(async () => {
  dir = await tempDir('runmesh-secrets-cp-');
  const keys = await tempDir('runmesh-keys-');
  keyOld = join(keys, 'old.key');
  keyNew = join(keys, 'new.key');
  await writeFile(keyOld, randomBytes(32).toString('base64'), { mode: 0o600 });
  await writeFile(keyNew, randomBytes(32).toString('hex'), { mode: 0o600 });
  port = await freePort();
  await start(['--secrets-key-file', keyOld]);
  agent = await startAgent(server.address, { name: 'sec-agent', args: ['--log-level', 'debug'] });
  admin = adminToken(dir);
  tokenA = newToken('submitter', 'a');
  tokenB = newToken('submitter', 'b');
  expect(cli(['secrets', 'set', 'TOKEN_A'], tokenA, `${TOKEN_A}\n`)).toEqual({ code: 0, out: 'secret a/TOKEN_A created\n' });
  const pemFile = join(keys, 'test.pem');
  await writeFile(pemFile, PEM, { mode: 0o600 });
  expect(cli(['secrets', 'set', 'PEM', '--from-file', pemFile], tokenA).code).toBe(0);
  expect(cli(['secrets', 'set', 'WEIRD'], tokenA, WEIRD).code).toBe(0);
}, 90_000);

afterAll(async () => {
  await stopAll();
});

async function runJob(c: TestClient): Promise<{ job: Job; stdout: string; stderr: string }> {
  const job = await c.submit({
    script: SCRIPT,
    secrets: [
      { name: 'TOKEN_A', env: 'TOKEN_A', path: '' },
      { name: 'WEIRD', env: 'WEIRD', path: '' },
      { name: 'PEM', env: '', path: 'keys/test.pem' },
    ],
  });
  const done = await c.waitDone(job.id, 60_000);
  const { stdout, stderr } = await c.logs(job.id);
  return { job: done, stdout, stderr };
}

describe('secrets end to end', () => {
  it('gives the job its values in env and file, masks every form in its log, and leaks them nowhere', async () => {
    const c = new TestClient(server.address, tokenA);
    try {
      await waitAgent();
      const { job, stdout, stderr } = await runJob(c);
      expect({ state: JobState[job.state], stdout, stderr, attempts: JSON.stringify(job.attempts, bigintSafe) }).toMatchObject({
        state: 'JOB_STATE_SUCCEEDED',
      });
      expect(stdout).toContain(`env:${sha(TOKEN_A)}`);
      expect(stdout).toContain(`file:${sha(PEM)}`);
      for (const line of ['plain *** end', 'split *** end', 'line *** end', 'b64 *** end', 'url *** end', 'json *** end'])
        expect({ line, stdout }).toEqual({ line, stdout: expect.stringContaining(line) as unknown });
      // The characters before and after the mask depend on user: and the padding, not on the value.
      expect(stdout).toMatch(/basic dXNlcj.{0,2}\*\*\*.{0,4} end/);
      expect(stderr).toBe('stderr ***\n');
      // In the order the agent read them: stdout and the progress file are read side by side.
      expect(job.annotations.map((a) => [a.text, a.fromFile]).sort()).toEqual([
        ['file *** end', true],
        ['token *** end', false],
      ]);
      const forms = VALUES.flatMap((v) => [v, Buffer.from(v).toString('base64'), encodeURIComponent(v), JSON.stringify(v).slice(1, -1)]);
      for (const f of [...forms, 'BEGIN TEST KEY']) expect({ f, leaked: `${stdout}${stderr}`.includes(f) }).toEqual({ f, leaked: false });
      // Get, List and jobs get show the references only; ListSecrets shows names.
      const listed = await new Promise<ListResponse>((resolve, reject) =>
        c.jobs.list(
          {
            states: [],
            namePrefix: '',
            tenant: '',
            pageSize: 100,
            pageToken: '',
            oldestFirst: false,
            labels: '',
            createdAfter: undefined,
            createdBefore: undefined,
          },
          (e, r) => (e ? reject(e) : resolve(r)),
        ),
      );
      const answers = JSON.stringify(
        [job, listed, cli(['secrets', 'ls', '--json'], tokenA).out, cli(['jobs', 'get', job.id, '--json'], tokenA).out],
        bigintSafe,
      );
      expect(answers).toContain('keys/test.pem');
      for (const v of VALUES) expect(answers).not.toContain(v);
      // The store's files, the control plane's and the agent's own output.
      for (const f of await filesUnder(dir)) for (const v of VALUES) expect(f.includes(v)).toBe(false);
      for (const out of [server.output(), agent.output()]) for (const v of VALUES) expect(out).not.toContain(v);
    } finally {
      c.close();
    }
  }, 90_000);

  it('refuses a job referencing a secret of another tenant', async () => {
    const b = new TestClient(server.address, tokenB);
    try {
      const err = (await b
        .submit({ argv: ['true'], secrets: [{ name: 'TOKEN_A', env: 'X', path: '' }] })
        .catch((e: unknown) => e)) as ServiceError;
      expect({ code: err.code, details: err.details }).toEqual({
        code: status.FAILED_PRECONDITION,
        details: 'spec.secrets[0].name: secret TOKEN_A does not exist in tenant b',
      });
      const other = (await b
        .submit({ argv: ['true'], tenant: 'a', secrets: [{ name: 'TOKEN_A', env: 'X', path: '' }] })
        .catch((e: unknown) => e)) as ServiceError;
      expect(other.code).toBe(status.PERMISSION_DENIED);
    } finally {
      b.close();
    }
  });

  it('re-encrypts under a new key, webhook secrets too, after which the old key is not needed', async () => {
    // A webhook's secret is sealed by the same key ring: made under the old key, it must verify under the new one alone.
    const template = join(dir, 'hooked.yaml');
    await writeFile(template, 'command: ["true"]\n');
    expect(cli(['templates', 'create', 'hooked', '-f', template, '--tenant', 'a'], admin).code).toBe(0);
    const hookSecret = join(dir, 'hook.secret');
    await writeFile(hookSecret, `hook-${randomBytes(12).toString('hex')}`);
    const made = cli(['hooks', 'create', 'rotated', '--template', 'hooked', '--secret-file', hookSecret, '--tenant', 'a'], admin);
    expect(made.code, made.out).toBe(0);
    await stopServer();
    await start(['--secrets-key-file', keyNew, '--secrets-previous-key-file', keyOld]);
    const rotated = cli(['secrets', 'rotate-key'], admin);
    expect(rotated.code).toBe(0);
    expect(rotated.out).toMatch(/^3 of 3 secrets re-encrypted, 1 of 1 webhook secrets; every secret is under key [0-9a-f]{16}\n$/);
    await stopServer();
    await start(['--secrets-key-file', keyNew]);
    const body = Buffer.from('{}');
    const delivered = await fetch(`http://${server.http}/hooks/rotated`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-github-delivery': randomBytes(8).toString('hex'),
        'x-hub-signature-256': sign(await readFile(hookSecret, 'utf8'), body),
      },
      body,
    });
    expect(delivered.status).toBe(202);
    const c = new TestClient(server.address, tokenA);
    try {
      await waitAgent();
      const { job, stdout } = await runJob(c);
      expect(JobState[job.state]).toBe('JOB_STATE_SUCCEEDED');
      expect(stdout).toContain(`env:${sha(TOKEN_A)}`);
      expect(stdout).toContain(`file:${sha(PEM)}`);
      for (const out of [...outputs, server.output(), agent.output()]) for (const v of VALUES) expect(out).not.toContain(v);
    } finally {
      c.close();
    }
  }, 120_000);
});
