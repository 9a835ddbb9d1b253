/**
 * `runmesh server --tls-auto`, over real sockets: the server makes a cluster
 * CA and its own certificate in the data dir and serves tcps and wss (plain
 * gRPC only on loopback); a join token comes with the CA's fingerprint, and
 * an agent given it pins the CA on first contact, enrols over tcps and runs a
 * job; a wrong fingerprint is refused; a restart keeps the CA; two peers on
 * one etcd share it and call each other over TLS. The CLI end: `runmesh
 * tokens create` prints the join string and `runmesh agent` takes it.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { credentials, type ServiceError } from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../agent/agent.js';
import type { ControlPlaneInput } from '../control-plane/options.js';
import { ControlPlane } from '../control-plane/server.js';
import { JobState } from '../proto/gen/runmesh/v1/job.js';
import { TokenServiceClient, type CreateTokenResponse } from '../proto/gen/runmesh/v1/token.js';
import { fingerprintOf, isPinMismatch, isTransportError } from '../transport/index.js';
import { adminToken, bearer, TestClient } from './support/client.js';
import { startEtcd, type TestEtcd } from './support/etcd.js';
import { waitLeader } from './support/mesh.js';
import { run, startServer, stopAll, tempDir, waitForOutput, type Proc } from './support/processes.js';
import { waitUntil, within } from './support/wait.js';

const STATIC = 'tls-auto-static-token';
const log = pino({ level: 'silent' });
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(() => stopAll());

interface Peer {
  cp: ControlPlane;
  /** The plaintext loopback listener's address. */
  plain: string;
  /** The TLS listener's address. */
  tls: string;
  client: TestClient;
  admin: string;
}

async function startControlPlane(input: Partial<ControlPlaneInput> = {}): Promise<ControlPlane> {
  const cp = await ControlPlane.start({
    listen: ['127.0.0.1:0'],
    httpListen: '127.0.0.1:0',
    plainListen: '127.0.0.1:0',
    tlsAuto: true,
    dataDir: await tempDir('runmesh-tls-auto-'),
    joinToken: STATIC,
    heartbeatTimeoutMs: 2_000,
    logger: log,
    ...input,
  });
  cleanups.push(() => cp.close());
  return cp;
}

function peerOf(cp: ControlPlane, admin: string): Peer {
  const [tls = '', plain = ''] = cp.grpcAddresses;
  const client = new TestClient(plain, admin);
  cleanups.push(() => client.close());
  return { cp, plain, tls, client, admin };
}

async function startPeer(input: Partial<ControlPlaneInput> = {}, admin?: string): Promise<Peer> {
  const cp = await startControlPlane(input);
  return peerOf(cp, admin ?? adminToken(cp.options.dataDir));
}

async function joinToken(peer: Peer): Promise<CreateTokenResponse> {
  const tokens = new TokenServiceClient(peer.plain, credentials.createInsecure(), { interceptors: [bearer(peer.admin)] });
  try {
    return await new Promise<CreateTokenResponse>((resolve, reject) =>
      tokens.createToken({ name: '', role: 'agent', tenants: [], ttlSeconds: 0, join: undefined }, (err, r) =>
        err ? reject(err) : resolve(r),
      ),
    );
  } finally {
    tokens.close();
  }
}

async function startAgent(servers: string[], name: string, token: string, caFingerprint: string, workDir?: string): Promise<Agent> {
  const agent = new Agent({
    servers,
    joinToken: token,
    caFingerprint,
    name,
    labels: { agent: name },
    workDir: workDir ?? (await tempDir('runmesh-tls-auto-agent-')),
    standbySupervisor: false,
    logger: log,
  });
  cleanups.push(() => agent.close());
  await agent.start();
  return agent;
}

async function runsJob(client: TestClient, agent: string): Promise<void> {
  const job = await client.submit({ argv: ['echo', 'over-tls'], selector: `agent=${agent}` });
  const done = await client.waitDone(job.id);
  expect(JobState[done.state]).toBe('JOB_STATE_SUCCEEDED');
  expect((await client.logs(job.id)).stdout).toBe('over-tls\n');
}

const exitCode = async (p: Proc): Promise<number> => {
  await waitUntil(() => p.proc.exitCode !== null, { what: `${p.args.slice(0, 2).join(' ')} to exit`, timeoutMs: 30_000 });
  return p.proc.exitCode ?? -1;
};

const fileMode = (path: string): number => statSync(path).mode & 0o777;

describe('runmesh server --tls-auto', () => {
  it('makes a CA and a certificate in the data dir, serves tcps and wss, and an agent pinning the CA enrols and runs a job', async () => {
    const peer = await startPeer({ tlsSans: ['runmesh.example.test'] });
    const dir = join(peer.cp.options.dataDir, 'tls');
    expect(fileMode(join(dir, 'server-key.pem'))).toBe(0o600);
    const ca = new X509Certificate(readFileSync(join(dir, 'ca.pem')));
    expect(ca.ca).toBe(true);
    const server = new X509Certificate(readFileSync(join(dir, 'server.pem')));
    expect(server.checkIssued(ca) && server.verify(ca.publicKey)).toBe(true);
    expect(server.subjectAltName).toContain('IP Address:127.0.0.1');
    expect(server.subjectAltName).toContain('DNS:localhost');
    expect(server.subjectAltName).toContain('DNS:runmesh.example.test');

    const fingerprint = fingerprintOf(Buffer.from(ca.raw));
    expect(peer.cp.autoTls?.fingerprint).toBe(fingerprint);
    const created = await joinToken(peer);
    expect(created.caFingerprint).toBe(fingerprint);

    const workDir = await tempDir('runmesh-tls-auto-agent-');
    await startAgent([`tcps://${peer.tls}`], 'pinned', created.token, fingerprint, workDir);
    await peer.client.waitAgents(1);
    await runsJob(peer.client, 'pinned');
    // The CA it found in the server's chain, kept for every later connection.
    expect(readFileSync(join(workDir, 'ca.pem'), 'utf8')).toBe(readFileSync(join(dir, 'ca.pem'), 'utf8'));

    // wss on the HTTP port, which is HTTPS now, with the same pinning.
    await startAgent([`wss://${peer.cp.httpAddress}/agent`], 'tunnelled', STATIC, fingerprint);
    await peer.client.waitAgents(2);
    await runsJob(peer.client, 'tunnelled');
  });

  it('serves no plaintext on the TLS listener', async () => {
    const peer = await startPeer();
    const plaintext = new TestClient(peer.tls, peer.admin);
    cleanups.push(() => plaintext.close());
    await expect(within(plaintext.status(), { what: 'a plaintext call to answer', timeoutMs: 10_000 })).rejects.toMatchObject({
      code: 14,
    } satisfies Partial<ServiceError>);
  });

  it('refuses to start a plaintext listener off loopback', async () => {
    const started = startControlPlane({ plainListen: '0.0.0.0:0' });
    await expect(started).rejects.toSatisfy(isTransportError);
    await expect(started).rejects.toThrow(/must be on loopback/);
  });

  it('refuses a server whose chain does not hold the pinned CA, saying so, and saves nothing', async () => {
    const peer = await startPeer();
    const workDir = await tempDir('runmesh-tls-auto-agent-');
    const wrong = `sha256:${'ab'.repeat(32)}`;
    const agent = await startAgent([`tcps://${peer.tls}`], 'wary', STATIC, wrong, workDir);
    const err = await within(agent.fatal, { what: 'the agent to refuse the server', timeoutMs: 15_000 });
    expect(isPinMismatch(err)).toBe(true);
    expect(err.message).toMatch(/presented no certificate with the pinned CA fingerprint sha256:abab/);
    expect(() => statSync(join(workDir, 'ca.pem'))).toThrow();
    expect((await peer.client.agents()).agents).toHaveLength(0);
  });

  it('keeps the CA across a restart, and an agent that pinned it reconnects', async () => {
    const first = await startPeer();
    const fingerprint = first.cp.autoTls?.fingerprint ?? '';
    const workDir = await tempDir('runmesh-tls-auto-agent-');
    const agent = await startAgent([`tcps://${first.tls}`], 'again', STATIC, fingerprint, workDir);
    await first.client.waitAgents(1);
    await agent.close();
    const dataDir = first.cp.options.dataDir;
    const address = first.tls;
    await first.cp.close();

    const second = await startPeer({ dataDir, listen: [address] }, first.admin);
    expect(second.cp.autoTls?.fingerprint).toBe(fingerprint);
    await startAgent([`tcps://${second.tls}`], 'again', STATIC, fingerprint, workDir);
    await second.client.waitAgents(1);
    await runsJob(second.client, 'again');
  });
});

describe('--tls-auto peers on one etcd', () => {
  let etcd: TestEtcd;
  afterAll(() => etcd?.stop());

  it('share one CA, and the leader reaches an agent on the other peer over TLS', async () => {
    etcd = await startEtcd();
    const store = `etcd://${etcd.endpoint.replace(/^https?:\/\//, '')}`;
    // Started together: exactly one creates the CA, both use it.
    const cps = await Promise.all(['tls-a', 'tls-b'].map((peerId) => startControlPlane({ store, peerId, peerTtlSeconds: 3 })));
    const admin = adminToken(...cps.map((cp) => cp.options.dataDir));
    const [a, b] = cps.map((cp) => peerOf(cp, admin)) as [Peer, Peer];
    expect(a.cp.autoTls?.fingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(b.cp.autoTls?.fingerprint).toBe(a.cp.autoTls?.fingerprint);
    const caPem = (p: Peer): string => readFileSync(join(p.cp.options.dataDir, 'tls', 'ca.pem'), 'utf8');
    expect(caPem(b)).toBe(caPem(a));
    // Each peer's own certificate, from the shared CA.
    const ca = new X509Certificate(caPem(a));
    for (const p of [a, b])
      expect(new X509Certificate(readFileSync(join(p.cp.options.dataDir, 'tls', 'server.pem'))).verify(ca.publicKey)).toBe(true);

    // The agent sits on the peer that does not lead: the leader's Assign crosses PeerService, over TLS.
    const leader = await waitLeader(a.client);
    const [home, other] = leader === 'tls-a' ? [b, a] : [a, b];
    const fingerprint = a.cp.autoTls?.fingerprint ?? '';
    await startAgent([`tcps://${home.tls}`, `tcps://${other.tls}`], 'meshed', STATIC, fingerprint);
    await home.client.waitAgents(1);
    await runsJob(other.client, 'meshed');
  });
});

describe('the CLI with --tls-auto', () => {
  it('tokens create prints a join string that runmesh agent pins and enrols with; a wrong fingerprint ends the agent', async () => {
    const server = await startServer({ args: ['--tls-auto', '--plain-listen', '127.0.0.1:0'] });
    const [, tls = '', plain = ''] = server.output().match(/gRPC ([^,\s]+), ([^,\s]+), http/) ?? [];
    await waitForOutput(server, /cluster CA sha256:[0-9a-f]{64}/);
    const admin = adminToken(server.dataDir);
    const create = run(['tokens', 'create', '--role', 'agent', '--server', plain, '--token', admin]);
    const [joinString = ''] = (await waitForOutput(create, /^rmt_\S+@sha256:[0-9a-f]{64}$/m)) ?? [];
    expect(await exitCode(create)).toBe(0);
    expect(joinString.split('@')[1]).toBe(server.output().match(/cluster CA (sha256:[0-9a-f]{64})/)?.[1]);

    const workDir = await tempDir('runmesh-tls-auto-cli-agent-');
    const agent = run([
      'agent',
      '--server',
      `tcps://${tls}`,
      '--join-token',
      joinString,
      '--name',
      'cli',
      '--labels',
      'agent=cli',
      '--work-dir',
      workDir,
    ]);
    const client = new TestClient(plain, admin);
    cleanups.push(() => client.close());
    await client.waitAgents(1, 30_000);
    await runsJob(client, 'cli');
    expect(await agent.stop()).toBe(0);

    // The client commands reach the TLS listener too, verifying it against the CA file.
    const caFile = join(server.dataDir, 'tls', 'ca.pem');
    const status = run(['cluster', 'status', '--server', `tcps://${tls}`, '--token', admin], { RUNMESH_TLS_CA: caFile });
    expect(await exitCode(status), status.output()).toBe(0);
    const untrusted = run(['cluster', 'status', '--server', `tcps://${tls}`, '--token', admin]);
    expect(await exitCode(untrusted)).not.toBe(0);

    const [token] = joinString.split('@');
    const wary = run([
      'agent',
      '--server',
      `tcps://${tls}`,
      '--join-token',
      `${token}@sha256:${'cd'.repeat(32)}`,
      '--name',
      'wary',
      '--work-dir',
      await tempDir(),
    ]);
    expect(await exitCode(wary)).not.toBe(0);
    expect(wary.output()).toMatch(/refusing the control plane: .*no certificate with the pinned CA fingerprint sha256:cdcd/);
    await server.stop();
  });
});
