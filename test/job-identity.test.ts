/**
 * Job identity across real processes (issue 18): a real `runmesh server`, a
 * real `runmesh agent`, and the real CLI run inside the job. The job finds
 * RUNMESH_JOB_TOKEN and RUNMESH_SERVER in its environment; with them it reads
 * its own job and nothing else, and the token is dead once the attempt ended.
 * The token shows up in no API answer and in neither process's log.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobState } from '../proto/gen/runmesh/v1/job.js';
import { adminToken, bigintSafe, TestClient } from './support/client.js';
import { CLI, run, startAgent, startServer, stopAll, tempDir, type AgentProc, type Proc, type ServerProc } from './support/processes.js';

let cp: ServerProc;
let agent: AgentProc;
let client: TestClient;
let dir: string;

beforeAll(async () => {
  cp = await startServer();
  agent = await startAgent(cp.address, { name: 'identity-1' });
  client = new TestClient(cp.address, adminToken(cp.dataDir));
  await client.waitAgents(1);
  dir = await tempDir('runmesh-identity-');
}, 60_000);

afterAll(async () => {
  client?.close();
  await stopAll();
});

/** The exit code of a CLI run. */
async function exitOf(p: Proc): Promise<number | null> {
  if (p.proc.exitCode === null) await new Promise((resolve) => p.proc.once('exit', resolve));
  return p.proc.exitCode;
}

/** `runmesh ARGS` as the job runs it, with the job's own environment. */
const rm = (args: string): string => `"${process.execPath}" "${CLI}" ${args}`;

describe('job tokens', () => {
  it('let a job read its own job, never another, and die when the attempt ends', async () => {
    const other = await client.submit({ argv: ['true'], name: 'other' });
    const script = [
      `echo "$RUNMESH_JOB_TOKEN" > ${dir}/token`,
      `${rm('jobs get "$RUNMESH_JOB_ID" --json')} --token "$RUNMESH_JOB_TOKEN" > ${dir}/own.json`,
      `if ${rm(`jobs get ${other.id}`)} --token "$RUNMESH_JOB_TOKEN" 2> ${dir}/other.err; then echo other-read; else echo other-refused; fi`,
      `if ${rm('jobs ls')} --token "$RUNMESH_JOB_TOKEN" 2> ${dir}/ls.err; then echo ls-ok; else echo ls-refused; fi`,
    ].join('\n');
    const job = await client.submit({ script, name: 'whoami' });
    const done = await client.waitDone(job.id, 60_000);
    expect(done.state, JSON.stringify(done.attempts, bigintSafe)).toBe(JobState.JOB_STATE_SUCCEEDED);
    const out = (await client.logs(job.id)).stdout;
    expect(out).toContain('other-refused');
    expect(out).toContain('ls-refused');
    expect(await readFile(join(dir, 'other.err'), 'utf8')).toMatch(/not found/i);
    expect(await readFile(join(dir, 'ls.err'), 'utf8')).toMatch(/permission denied|needs jobs\.read/i);
    const own = JSON.parse(await readFile(join(dir, 'own.json'), 'utf8')) as { id: string };
    expect(own.id).toBe(job.id);

    const token = (await readFile(join(dir, 'token'), 'utf8')).trim();
    expect(token).toMatch(/^rmj_j_[0-9a-z]+_1_[A-Za-z0-9_-]{43}$/);
    // Its attempt ended: the same token is refused.
    const after = run(['jobs', 'get', job.id, '--server', cp.address, '--token', token]);
    expect(await exitOf(after)).not.toBe(0);
    expect(after.output()).toMatch(/attempt has ended/);

    // Nowhere but in the job: not in the job record, not in the server's or the agent's log.
    expect(JSON.stringify(await client.get(job.id), bigintSafe)).not.toContain(token);
    expect(cp.output()).not.toContain(token);
    expect(agent.output()).not.toContain(token);
  }, 90_000);
});

describe('OIDC ID tokens', () => {
  it('verify against the JWKS URL; another audience or an expired one fails', async () => {
    const issuer = `http://${cp.http}`;
    const discovery = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(discovery).toMatchObject({
      issuer,
      jwks_uri: `${issuer}/.well-known/jwks.json`,
      id_token_signing_alg_values_supported: ['ES256'],
    });

    const script = `${rm('id-token --audience sts.example.com')} > ${dir}/id-token`;
    const job = await client.submit({ script, name: 'deploy' });
    const done = await client.waitDone(job.id, 60_000);
    expect(done.state, JSON.stringify(done.attempts, bigintSafe)).toBe(JobState.JOB_STATE_SUCCEEDED);
    const token = (await readFile(join(dir, 'id-token'), 'utf8')).trim();

    const jwks = createRemoteJWKSet(new URL(String(discovery.jwks_uri)));
    const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer, audience: 'sts.example.com' });
    expect(protectedHeader.alg).toBe('ES256');
    expect(payload).toMatchObject({ sub: 'default/deploy', job_id: job.id, attempt: 1, agent: 'identity-1', tenant: 'default' });
    expect(payload.labels).toMatchObject({ 'runmesh.io/executor-shell': 'true' });
    expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(600);

    await expect(jwtVerify(token, jwks, { issuer, audience: 'someone-else' })).rejects.toThrow(/aud/);
    const later = new Date((decodeJwt(token).exp! + 1) * 1000);
    await expect(jwtVerify(token, jwks, { issuer, audience: 'sts.example.com', currentDate: later })).rejects.toThrow(/exp/);
    expect(cp.output()).not.toContain(token);
    expect(agent.output()).not.toContain(token);
  }, 90_000);

  it('serves its documents to anyone, at a bounded rate', async () => {
    const url = `http://${cp.http}/.well-known/jwks.json`;
    const codes = await Promise.all(Array.from({ length: 150 }, async () => (await fetch(url)).status));
    expect(codes.filter((c) => c === 200).length).toBeGreaterThanOrEqual(100);
    expect(codes).toContain(429);
  });
});
