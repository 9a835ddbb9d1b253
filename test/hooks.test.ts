/**
 * Webhooks with real processes: a control plane (embedded store, a secrets
 * key), an agent and the built CLI. Inbound: a delivery signed as GitHub
 * signs it starts the hook's template with parameters from the payload
 * (202, the job runs); a bad signature is 401, a replayed delivery id 409, a
 * stale signed timestamp 409, a body over the limit 413 (declared, or
 * streamed without a length), a missing payload field 422 naming it.
 * Outbound: the job's ending is POSTed to a receiver on loopback, signed
 * (the receiver checks the HMAC), and retried while the receiver answers 500:
 * the history shows three attempts, the last 200.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobState } from '../proto/gen/runmesh/v1/job.js';
import { sign, signedContent, verify } from '../control-plane/hooks/signature.js';
import { adminToken, TestClient } from './support/client.js';
import { CLI, startAgent, startServer, stopAll, tempDir, type ServerProc } from './support/processes.js';
import { waitUntil } from './support/wait.js';

const SECRET = 'inbound-secret-0123456789abcdef';
const OUT_SECRET = 'outbound-secret-0123456789abcdef';

let server: ServerProc;
let dir: string;
let admin: string;
let jobs: TestClient;
let receiver: Server;
/** What the receiver was sent, in order, and whether each signature checked. */
const received: Array<{ headers: IncomingHttpHeaders; body: string; signed: boolean }> = [];

function cli(args: string[]): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, RUNMESH_SERVER: server.address, RUNMESH_TOKEN: admin, RUNMESH_LOG_LEVEL: 'silent' },
  });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

beforeAll(async () => {
  dir = await tempDir('runmesh-hooks-');
  const key = join(dir, 'secrets.key');
  await writeFile(key, randomBytes(32).toString('base64'), { mode: 0o600 });
  server = await startServer({ dataDir: join(dir, 'cp'), args: ['--secrets-key-file', key] });
  await startAgent(server.address, { name: 'hooks-agent', slots: 2 });
  admin = adminToken(join(dir, 'cp'));
  jobs = new TestClient(server.address, admin);
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const ts = req.headers['x-runmesh-timestamp'] as string | undefined;
      received.push({
        headers: req.headers,
        body: body.toString(),
        signed: verify(OUT_SECRET, signedContent(body, ts), req.headers['x-hub-signature-256'] as string),
      });
      res.writeHead(received.length <= 2 ? 500 : 200).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  await writeFile(join(dir, 'in.secret'), `${SECRET}\n`);
  await writeFile(join(dir, 'out.secret'), OUT_SECRET);
  await writeFile(
    join(dir, 'build.yaml'),
    'params:\n  sha: {required: true}\n  branch: {default: main}\ncommand: [sh, -c, "echo built ${{ params.sha }} on ${{ params.branch }}"]\n',
  );
  await jobs.waitAgents(1, 30_000);
}, 90_000);

afterAll(async () => {
  jobs?.close();
  receiver?.close();
  await stopAll();
});

/** POSTs `body` to /hooks/NAME with `headers`, GitHub-signed under `secret` unless the headers sign it. */
async function deliver(
  name: string,
  body: string,
  headers: Record<string, string>,
  secret = SECRET,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`http://${server.http}/hooks/${name}`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json', 'x-hub-signature-256': sign(secret, Buffer.from(body)), ...headers },
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe('hooks', () => {
  it('start the template from a signed delivery, refuse bad, replayed, stale and oversized ones, and send the ending out signed, retried', async () => {
    expect(cli(['templates', 'create', 'build', '-f', join(dir, 'build.yaml')]).code).toBe(0);
    const port = (receiver.address() as AddressInfo).port;
    const out = cli([
      'hooks',
      'create',
      'notify',
      '--url',
      `http://127.0.0.1:${port}/events`,
      '--events',
      'job.finished',
      '--secret-file',
      join(dir, 'out.secret'),
    ]);
    expect(out.code, out.out).toBe(0);
    const made = cli([
      'hooks',
      'create',
      'gh',
      '--template',
      'build',
      '--param-map',
      'sha=$.after,branch=repository.default_branch',
      '--secret-file',
      join(dir, 'in.secret'),
    ]);
    expect(made.code, made.out).toBe(0);
    expect(cli(['hooks', 'ls']).out).toMatch(/gh\s+in\s+build/);

    const push = JSON.stringify({ after: 'abc123', repository: { default_branch: 'trunk' } });
    const ok = await deliver('gh', push, { 'x-github-delivery': 'd-1', 'x-github-event': 'push' });
    expect(ok.status, JSON.stringify(ok.json)).toBe(202);
    const id = ok.json.job_id as string;
    const done = await jobs.waitDone(id);
    expect(done.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect(done.spec?.argv.join(' ')).toContain('echo built abc123 on trunk');

    expect((await deliver('gh', push, { 'x-github-delivery': 'd-2' }, 'not-the-secret-at-all-000000')).status).toBe(401);
    expect((await deliver('gh', push, { 'x-github-delivery': 'd-3', 'x-hub-signature-256': 'sha256=00' })).status).toBe(401);
    expect((await deliver('gh', push, { 'x-github-delivery': 'd-1' })).status).toBe(409);
    const stale = String(Math.floor(Date.now() / 1000) - 3600);
    const staleSig = sign(SECRET, signedContent(Buffer.from(push), stale));
    expect(
      (await deliver('gh', push, { 'x-runmesh-delivery': 'd-4', 'x-runmesh-timestamp': stale, 'x-hub-signature-256': staleSig })).status,
    ).toBe(409);
    const missing = await deliver('gh', JSON.stringify({ before: 'x' }), { 'x-github-delivery': 'd-5' });
    expect([missing.status, missing.json.error]).toEqual([422, 'payload field $.after: missing']);
    expect((await deliver('nope', push, { 'x-github-delivery': 'd-6' })).status).toBe(404);
    expect((await deliver('gh', JSON.stringify({ pad: 'x'.repeat(1 << 20) }), { 'x-github-delivery': 'd-7' })).status).toBe(413);
    expect(await streamed(`http://${server.http}/hooks/gh`, 2 << 20)).toBe(413);

    // The ending of job `id` went out: refused twice (500), then taken, each attempt signed, one delivery id.
    await waitUntil(() => received.length >= 3, { what: 'three attempts at the receiver', timeoutMs: 20_000 });
    expect(received.map((r) => r.signed)).toEqual([true, true, true]);
    expect(new Set(received.map((r) => r.headers['x-runmesh-delivery'])).size).toBe(1);
    expect(received[0]!.headers['x-runmesh-event']).toBe('job.finished');
    expect(JSON.parse(received[0]!.body)).toMatchObject({ event: 'job.finished', job: { id, state: 'JOB_STATE_SUCCEEDED' } });
    const history = await waitUntil(
      () => {
        const r = cli(['hooks', 'deliveries', 'notify', '--json']);
        const list = JSON.parse(r.out.slice(r.out.indexOf('['))) as Array<{
          attempts: number;
          statusCode: number;
          delivered: boolean;
          subject: string;
        }>;
        return list[0]?.delivered ? list : undefined;
      },
      { what: 'the delivery to be recorded as delivered', timeoutMs: 5000 },
    );
    expect(history).toEqual([expect.objectContaining({ subject: id, attempts: 3, statusCode: 200, delivered: true })]);
    expect(cli(['hooks', 'rm', 'gh']).code).toBe(0);
    expect((await deliver('gh', push, { 'x-github-delivery': 'd-8' })).status).toBe(404);
  }, 60_000);
});

/** POSTs `size` bytes without a content-length (chunked); the status the server answered, or 413 from a reset after it. */
function streamed(url: string, size: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'transfer-encoding': 'chunked', 'x-github-delivery': 'd-9' } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    const chunk = Buffer.alloc(64 * 1024, 'a');
    let sent = 0;
    const pump = (): void => {
      while (sent < size) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}
