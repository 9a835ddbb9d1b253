/**
 * Signed jobs across real processes (issue 18): a real control plane, a real
 * agent started with --trusted-keys, and the real CLI signing with
 * --sign-key. A signed job runs; an unsigned one, or one signed by a key the
 * agent does not trust, is refused (UNTRUSTED, not retried); and a signed job
 * whose spec was rewritten in the store while the control plane was down is
 * refused when it is assigned.
 */
import { generateKeyPairSync } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openEmbeddedStore } from '../control-plane/store/embedded.js';
import { FailureCategory, JobState } from '../proto/gen/runmesh/v1/job.js';
import { adminToken, bigintSafe, TestClient } from './support/client.js';
import { run, startAgent, startServer, stopAll, tempDir, type Proc, type ServerProc } from './support/processes.js';

let cp: ServerProc;
let client: TestClient;
let dir: string;
let keyFile: string;
let otherKeyFile: string;
let jwksFile: string;

async function exitOf(p: Proc): Promise<number | null> {
  if (p.proc.exitCode === null) await new Promise((resolve) => p.proc.once('exit', resolve));
  return p.proc.exitCode;
}

/** `runmesh submit ARGS` with the admin token; the job id it printed. */
async function submit(args: string[]): Promise<string> {
  const p = run(['submit', '--server', cp.address, '--token', adminToken(cp.dataDir), ...args]);
  expect(await exitOf(p), p.output()).toBe(0);
  return p.output().trim().split('\n').at(-1)!;
}

beforeAll(async () => {
  dir = await tempDir('runmesh-signed-');
  const trusted = generateKeyPairSync('ed25519');
  keyFile = join(dir, 'signer.pem');
  await writeFile(keyFile, trusted.privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  // A second key, given as a JWK, that no agent trusts.
  otherKeyFile = join(dir, 'other.jwk');
  await writeFile(
    otherKeyFile,
    JSON.stringify({ ...generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' }), kid: 'stranger' }),
  );
  jwksFile = join(dir, 'trusted.jwks');
  await writeFile(jwksFile, JSON.stringify({ keys: [trusted.publicKey.export({ format: 'jwk' })] }));
  cp = await startServer();
  await startAgent(cp.address, { name: 'trusting-1', args: ['--trusted-keys', jwksFile] });
  client = new TestClient(cp.address, adminToken(cp.dataDir));
  await client.waitAgents(1);
}, 60_000);

afterAll(async () => {
  client?.close();
  await stopAll();
});

describe('signed jobs', () => {
  it('run on a trusting agent when signed by a trusted key; unsigned or unknown keys are refused, not retried', async () => {
    const good = await submit(['--sign-key', keyFile, '--retries', '2', '--', 'echo', 'signed-ran']);
    const ran = await client.waitDone(good, 60_000);
    expect(ran.state, JSON.stringify(ran.attempts, bigintSafe)).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect((await client.logs(good)).stdout).toBe('signed-ran\n');

    for (const args of [[], ['--sign-key', otherKeyFile]]) {
      const id = await submit([...args, '--retries', '2', '--', 'echo', 'must-not-run']);
      const done = await client.waitDone(id, 60_000);
      expect(done.state).toBe(JobState.JOB_STATE_FAILED);
      expect(done.attempts).toHaveLength(1);
      expect(done.attempts[0]!.failure).toBe(FailureCategory.FAILURE_CATEGORY_UNTRUSTED);
      expect(done.attempts[0]!.message).toMatch(args.length ? /key stranger, which this agent does not trust/ : /not signed/);
      expect((await client.logs(id)).stdout).toBe('');
    }
  }, 120_000);

  it('refuses a signed job whose stored spec was changed in the store', async () => {
    // Queued for an agent that is not there yet, so it is still unassigned when the store is rewritten.
    const id = await submit(['--sign-key', keyFile, '--label', 'pool=later', '--', 'echo', 'as-signed']);
    await cp.stop();
    const store = await openEmbeddedStore({ dir: join(cp.dataDir, 'store') });
    const key = `/runmesh/jobs/${id}`;
    const kv = await store.get(key);
    expect(kv?.value).toContain('as-signed');
    await store.put(key, kv!.value.replace('as-signed', 'tampered'));
    await store.close();

    cp = await startServer({ dataDir: cp.dataDir });
    client.close();
    client = new TestClient(cp.address, adminToken(cp.dataDir));
    await startAgent(cp.address, { name: 'trusting-2', labels: 'pool=later', args: ['--trusted-keys', jwksFile] });
    const done = await client.waitDone(id, 60_000);
    expect(done.state).toBe(JobState.JOB_STATE_FAILED);
    expect(done.attempts[0]!.failure).toBe(FailureCategory.FAILURE_CATEGORY_UNTRUSTED);
    expect(done.attempts[0]!.message).toMatch(/changed after signing/);
    expect((await client.logs(id)).stdout).toBe('');
  }, 120_000);
});
