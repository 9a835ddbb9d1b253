/**
 * An agent's own credential, one session per identity, and revocation, over
 * real gRPC against a real in-process control plane (embedded store): real
 * Agents (real supervisors and jobs) enrol with the join token, save their
 * credential (0600) and reconnect with it; the join token cannot take an
 * enrolled name; a forged credential is refused; an impostor with the live
 * agent's credential is refused and its job is untouched; `runmesh agents
 * revoke` (the real CLI, a real process) cuts a running agent within a second,
 * refuses its reconnect, its job is handled as lost and killed on the host;
 * credentials rotate over the stream (`runmesh agents rotate`, and at two
 * thirds of their lifetime) without losing a log line, and expire.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { credentials, status, type ServiceError } from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../agent/agent.js';
import { credentialPath, readCredential } from '../agent/session/credential.js';
import { ControlPlane } from '../control-plane/server.js';
import { AgentServiceClient, type ConnectResponse } from '../proto/gen/runmesh/v1/agent.js';
import { AgentState } from '../proto/gen/runmesh/v1/cluster.js';
import { FailureCategory, JobState } from '../proto/gen/runmesh/v1/job.js';
import { PROTOCOL_VERSION } from '../proto/protocol.js';
import { AuditServiceClient, type AuditEntry } from '../proto/gen/runmesh/v1/audit.js';
import { adminToken, bearer, TestClient } from './support/client.js';
import { startEtcd } from './support/etcd.js';
import { run, tempDir } from './support/processes.js';
import { sleep, waitUntil, within } from './support/wait.js';

/** The stored audit entries of `actor`, read with AuditService. */
async function auditOf(address: string, token: string, actor: string): Promise<AuditEntry[]> {
  const c = new AuditServiceClient(address, credentials.createInsecure(), { interceptors: [bearer(token)] });
  try {
    return await new Promise<AuditEntry[]>((resolve, reject) =>
      c.listAudit({ since: '', actor, limit: 100, pageToken: '' }, (err, res) => (err ? reject(err) : resolve(res.entries))),
    );
  } finally {
    c.close();
  }
}

/** True while process `pid` exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const TOKEN = 'agent-identity-token';
/** Every log line of the control planes and agents here: refusals must be audited, and no secret may appear. */
const lines: string[] = [];
const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
const logged = (): Array<Record<string, unknown>> => lines.map((l) => JSON.parse(l) as Record<string, unknown>);

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  const all = lines.splice(0).join('');
  expect(all).not.toContain(TOKEN);
  expect(all).not.toMatch(/rma_[A-Za-z0-9_-]{43}/);
});

async function controlPlane(
  o: { heartbeatTimeoutMs?: number; store?: string; peerId?: string; agentCredentialTtlMs?: number } = {},
): Promise<{ cp: ControlPlane; client: TestClient; token: string }> {
  const cp = await ControlPlane.start({
    listen: ['127.0.0.1:0'],
    httpListen: '127.0.0.1:0',
    dataDir: await tempDir('runmesh-identity-'),
    joinToken: TOKEN,
    logger: log,
    ...o,
  });
  // On a shared etcd only the first control plane creates the cluster's admin token.
  const token = o.store ? (clusterTokens[o.store] ??= adminToken(cp.options.dataDir)) : adminToken(cp.options.dataDir);
  const client = new TestClient(cp.address, token);
  cleanups.push(
    () => cp.close(),
    () => client.close(),
  );
  return { cp, client, token };
}

const clusterTokens: Record<string, string> = {};

async function startAgent(server: string, name: string, workDir: string): Promise<Agent> {
  const agent = new Agent({ servers: [server], joinToken: TOKEN, name, workDir, standbySupervisor: false, logger: log });
  cleanups.push(() => agent.close());
  await agent.start();
  return agent;
}

const ready = (client: TestClient, name: string) =>
  waitUntil(async () => (await client.agents()).agents.find((a) => a.name === name && a.state === AgentState.AGENT_STATE_READY), {
    what: `agent ${name} to be ready`,
    timeoutMs: 15_000,
  });

interface Answer {
  welcome?: ConnectResponse;
  code?: number;
  details?: string;
  /** Everything the control plane sent on the stream, as it arrives. */
  received: ConnectResponse[];
  /** Ends the stream. */
  end(): void;
}

/** One raw Hello; resolves with the Welcome or the status that ended the stream. */
async function hello(address: string, o: { name: string; joinToken?: string; credential?: string }): Promise<Answer> {
  const raw = new AgentServiceClient(address, credentials.createInsecure());
  const call = raw.connect();
  cleanups.push(
    () => call.cancel(),
    () => raw.close(),
  );
  const received: ConnectResponse[] = [];
  const end = (): void => call.cancel();
  const answer = new Promise<Answer>((resolve) => {
    call.on('data', (m: ConnectResponse) => {
      received.push(m);
      if (m.msg?.$case === 'welcome') resolve({ welcome: m, received, end });
    });
    call.on('error', (e: ServiceError) => resolve({ code: e.code, details: e.details, received, end }));
  });
  call.write({
    msg: {
      $case: 'hello',
      value: {
        name: o.name,
        joinToken: o.joinToken ?? '',
        credential: o.credential ?? '',
        labels: {},
        capacity: { slots: 1, cpuMillis: 0, memoryMb: 0 },
        version: 'test',
        protocolVersion: PROTOCOL_VERSION,
        containment: '',
        held: [],
        hostname: 'impostor',
      },
    },
  });
  return within(answer, { what: 'Welcome or an error', timeoutMs: 10_000 });
}

describe("an agent's own credential", () => {
  it('is given on enrolment with the join token, saved 0600 in the work dir, and used to reconnect after a restart', async () => {
    const { cp, client } = await controlPlane();
    const workDir = await tempDir('runmesh-identity-agent-');
    const first = await startAgent(cp.address, 'enrolled', workDir);
    await ready(client, 'enrolled');
    const saved = await waitUntil(() => readCredential(workDir), { what: 'the saved credential', timeoutMs: 5_000 });
    expect(saved).toMatch(/^rma_[A-Za-z0-9_-]{43}$/);
    expect(statSync(credentialPath(workDir)).mode & 0o777).toBe(0o600);
    await first.close();
    await waitUntil(
      async () => !(await client.agents()).agents.some((a) => a.name === 'enrolled' && a.state === AgentState.AGENT_STATE_READY),
      {
        what: 'the first session to end',
        timeoutMs: 10_000,
      },
    );

    // The same work dir: the agent presents its credential (the join token could no longer take the name).
    const again = await startAgent(cp.address, 'enrolled', workDir);
    await ready(client, 'enrolled');
    expect(readCredential(workDir)).toBe(saved);
    const job = await client.submit({ argv: ['echo', 'still me'] });
    expect((await client.waitDone(job.id)).state).toBe(JobState.JOB_STATE_SUCCEEDED);
    await again.close();
  });

  it('refuses the join token for an enrolled name, and a forged or unknown credential', async () => {
    const { cp, client } = await controlPlane();
    await startAgent(cp.address, 'taken', await tempDir('runmesh-identity-agent-'));
    await ready(client, 'taken');

    const byToken = await hello(cp.address, { name: 'taken', joinToken: TOKEN });
    expect(byToken.code).toBe(status.UNAUTHENTICATED);
    expect(byToken.details).toContain('runmesh agents revoke taken');

    const forged = await hello(cp.address, { name: 'taken', credential: 'rma_' + 'A'.repeat(43) });
    expect(forged.code).toBe(status.UNAUTHENTICATED);
    const unknown = await hello(cp.address, { name: 'never-enrolled', credential: 'rma_' + 'B'.repeat(43) });
    expect(unknown.code).toBe(status.UNAUTHENTICATED);
    const wrongToken = await hello(cp.address, { name: 'fresh', joinToken: 'not-the-token' });
    expect(wrongToken.code).toBe(status.UNAUTHENTICATED);

    // A fresh name still enrols with just the join token.
    const fresh = await hello(cp.address, { name: 'fresh', joinToken: TOKEN });
    expect(fresh.welcome?.msg?.$case === 'welcome' && fresh.welcome.msg.value.credential).toMatch(/^rma_/);
  });

  it("refuses an impostor presenting the live agent's credential; the agent's running job completes, once", async () => {
    const { cp, client, token } = await controlPlane();
    const workDir = await tempDir('runmesh-identity-agent-');
    await startAgent(cp.address, 'victim', workDir);
    await ready(client, 'victim');
    const credential = readCredential(workDir);
    const job = await client.submit({ script: 'sleep 1.5; echo done' });
    await client.waitFor(job.id, (j) => j.state === JobState.JOB_STATE_RUNNING);

    const impostor = await hello(cp.address, { name: 'victim', credential });
    expect(impostor.code).toBe(status.ALREADY_EXISTS);
    const twice = await hello(cp.address, { name: 'victim', credential });
    expect(twice.code).toBe(status.ALREADY_EXISTS);

    const audited = logged().filter((l) => l.audit === true && l.agent_id === 'victim');
    expect(audited).toHaveLength(2);
    expect(audited[0]).toMatchObject({ level: 40, presented: 'credential' });
    expect(String(audited[0]?.remote)).toContain('127.0.0.1');
    // Kept in the stored audit trail too: the enrolment, then each refusal.
    const trail = await waitUntil(
      async () => {
        const got = await auditOf(cp.address, token, 'agent:victim');
        return got.length >= 3 ? got : undefined;
      },
      { what: "the victim's audit entries" },
    );
    expect(trail.map((e) => `${e.method} ${e.result}`).sort()).toEqual([
      'AgentService.Connect ALREADY_EXISTS',
      'AgentService.Connect ALREADY_EXISTS',
      'AgentService.Enrol OK',
    ]);
    expect(trail[0]?.address).toContain('127.0.0.1');
    const done = await client.waitDone(job.id);
    expect(done.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect(done.attempts).toHaveLength(1);
    expect((await client.logs(job.id)).stdout).toBe('done\n');
    expect((await client.agents()).agents.find((a) => a.name === 'victim')?.state).toBe(AgentState.AGENT_STATE_READY);
  });
});

describe('runmesh agents revoke', () => {
  it('cuts a running agent within 1 s, refuses its reconnect, and its job is handled as lost', async () => {
    const { cp, client, token } = await controlPlane({ heartbeatTimeoutMs: 2_000 });
    const workDir = await tempDir('runmesh-identity-agent-');
    const agent = await startAgent(cp.address, 'revoked', workDir);
    await ready(client, 'revoked');
    const credential = readCredential(workDir);
    const pidFile = join(await tempDir('runmesh-identity-pid-'), 'pid');
    const job = await client.submit({ script: `echo $$ > ${pidFile}; exec sleep 30` });
    await client.waitFor(job.id, (j) => j.state === JobState.JOB_STATE_RUNNING);
    const pid = Number(await waitUntil(() => readFileSync(pidFile, 'utf8').trim() || undefined, { what: 'the job to write its pid' }));

    const cli = run(['agents', 'revoke', 'revoked', '--server', cp.address], { RUNMESH_TOKEN: token });
    await waitUntil(() => cli.proc.exitCode !== null, { what: 'runmesh agents revoke to exit', timeoutMs: 15_000, show: cli.output });
    expect(cli.proc.exitCode, cli.output()).toBe(0);
    expect(cli.output()).toContain('revoked revoked');
    // The revoke has answered: the agent's stream ends within a second, and it stops reconnecting.
    const err = (await within(agent.fatal, { what: 'the agent to be cut off', timeoutMs: 1_000 })) as ServiceError;
    expect(err.code).toBe(status.UNAUTHENTICATED);

    const reconnect = await hello(cp.address, { name: 'revoked', credential });
    expect(reconnect.code).toBe(status.UNAUTHENTICATED);
    const lost = await client.waitDone(job.id, 20_000);
    expect(lost.state).not.toBe(JobState.JOB_STATE_SUCCEEDED);
    expect(lost.attempts[0]?.failure).toBe(FailureCategory.FAILURE_CATEGORY_AGENT_LOST);
    // The revoked agent stopped the job on its host too: the control plane may run it elsewhere.
    await waitUntil(() => !alive(pid), { what: `the revoked agent's job (pid ${pid}) to be killed`, timeoutMs: 5_000 });
  });
});

describe('credential rotation', () => {
  it('`runmesh agents rotate` hands a running agent a new credential over its stream: its job loses nothing, the old one is refused', async () => {
    const { cp, client, token } = await controlPlane();
    const workDir = await tempDir('runmesh-identity-agent-');
    const agent = await startAgent(cp.address, 'rotated', workDir);
    await ready(client, 'rotated');
    const before = readCredential(workDir);
    const job = await client.submit({ script: 'for i in $(seq 1 30); do echo line $i; sleep 0.05; done' });
    await client.waitFor(job.id, (j) => j.state === JobState.JOB_STATE_RUNNING);

    const cli = run(['agents', 'rotate', 'rotated', '--server', cp.address], { RUNMESH_TOKEN: token });
    await waitUntil(() => cli.proc.exitCode !== null, { what: 'runmesh agents rotate to exit', timeoutMs: 15_000, show: cli.output });
    expect(cli.proc.exitCode, cli.output()).toBe(0);
    expect(cli.output()).toContain('rotated rotated: it saved its new credential');

    const after = readCredential(workDir);
    expect(after).toMatch(/^rma_[A-Za-z0-9_-]{43}$/);
    expect(after).not.toBe(before);
    expect(statSync(credentialPath(workDir)).mode & 0o777).toBe(0o600);
    expect((await hello(cp.address, { name: 'rotated', credential: before })).code).toBe(status.UNAUTHENTICATED);
    // The new one is accepted: it meets the live session, not a refusal.
    expect((await hello(cp.address, { name: 'rotated', credential: after })).code).toBe(status.ALREADY_EXISTS);

    const done = await client.waitDone(job.id);
    expect(done.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect(done.attempts).toHaveLength(1);
    const expected = Array.from({ length: 30 }, (_, i) => `line ${i + 1}\n`).join('');
    expect((await client.logs(job.id)).stdout).toBe(expected);
    // The same session throughout: no reconnect, no refusal.
    expect(logged().filter((l) => l.agent_id === 'rotated' && l.msg === 'agent connected')).toHaveLength(1);
    expect(await Promise.race([agent.fatal, sleep(0).then(() => 'alive')])).toBe('alive');
    expect(logged().filter((l) => l.event === 'agent_rotated')).toHaveLength(1);
    const rotations = await waitUntil(
      async () => {
        const got = (await auditOf(cp.address, token, 'agent:rotated')).filter((e) => e.method === 'AgentService.RotateCredential');
        return got.length > 0 ? got : undefined;
      },
      { what: 'the rotation in the audit trail' },
    );
    expect(rotations.map((e) => e.result)).toEqual(['OK']);

    const nobody = run(['agents', 'rotate', 'never-enrolled', '--server', cp.address], { RUNMESH_TOKEN: token });
    await waitUntil(() => nobody.proc.exitCode !== null, { what: 'runmesh agents rotate to exit', timeoutMs: 15_000, show: nobody.output });
    expect(nobody.proc.exitCode).toBe(1);
    expect(nobody.output()).toContain('never-enrolled has no credential to rotate');
  });

  it('rotates automatically at two thirds of --agent-credential-ttl, and a credential past its expiry is refused', async () => {
    const { cp, client } = await controlPlane({ agentCredentialTtlMs: 3_000 });
    const workDir = await tempDir('runmesh-identity-agent-');
    const agent = await startAgent(cp.address, 'ageing', workDir);
    await ready(client, 'ageing');
    const seen = new Set([readCredential(workDir)]);
    // Two rotations, each at 2 s into a credential's 3 s life.
    await waitUntil(() => seen.add(readCredential(workDir)).size >= 3, { what: 'two automatic rotations', timeoutMs: 8_000 });
    const job = await client.submit({ argv: ['echo', 'after rotations'] });
    expect((await client.waitDone(job.id)).state).toBe(JobState.JOB_STATE_SUCCEEDED);

    await agent.close();
    const last = readCredential(workDir);
    // Proving something happens after a time: the last credential's 3 s run out while the agent is away.
    await sleep(3_200);
    const expired = await hello(cp.address, { name: 'ageing', credential: last });
    expect(expired.code).toBe(status.UNAUTHENTICATED);
    expect(expired.details).toContain('expired');
  });

  it('an agent that saved a new credential but lost the connection before confirming it reconnects with it, and the old one stops working', async () => {
    const { cp } = await controlPlane({ agentCredentialTtlMs: 3_000 });
    const enrolled = await hello(cp.address, { name: 'crashy', joinToken: TOKEN });
    const old = enrolled.welcome?.msg?.$case === 'welcome' ? enrolled.welcome.msg.value.credential : '';
    expect(old).toMatch(/^rma_/);
    const rotate = await waitUntil(
      () => enrolled.received.map((m) => (m.msg?.$case === 'rotate' ? m.msg.value : undefined)).find((r) => r !== undefined),
      { what: 'a Rotate', timeoutMs: 5_000 },
    );
    expect(rotate.credential).not.toBe(old);
    expect(Date.parse(rotate.expiresAt ?? '')).toBeGreaterThan(Date.now());
    // The "agent" saved it and died before its CredentialSaved went out.
    enrolled.end();
    const again = await waitUntil(
      async () => {
        const a = await hello(cp.address, { name: 'crashy', credential: rotate.credential });
        return a.code === status.ALREADY_EXISTS ? undefined : a;
      },
      { what: 'the old session to be released' },
    );
    expect(again.welcome).toBeDefined();
    expect((await hello(cp.address, { name: 'crashy', credential: old })).code).toBe(status.UNAUTHENTICATED);
  });
});

describe('across peers on one etcd', () => {
  it('refuses an impostor on another peer; a rotate or a revoke asked of one peer reaches the agent held by the other', async () => {
    const etcd = await startEtcd();
    cleanups.push(() => etcd.stop());
    const store = `etcd://${etcd.endpoint.replace(/^https?:\/\//, '')}`;
    const a = await controlPlane({ store, peerId: 'peer-a' });
    const b = await controlPlane({ store, peerId: 'peer-b' });
    const workDir = await tempDir('runmesh-identity-agent-');
    const agent = await startAgent(a.cp.address, 'roamer', workDir);
    await ready(b.client, 'roamer'); // b sees it through the directory
    const credential = readCredential(workDir);

    // b reads the enrolment from the store (it accepts the credential) and sees the live session on a.
    const impostor = await hello(b.cp.address, { name: 'roamer', credential });
    expect(impostor.code).toBe(status.ALREADY_EXISTS);
    expect(impostor.details).toContain('peer-a');
    const byToken = await hello(b.cp.address, { name: 'roamer', joinToken: TOKEN });
    expect(byToken.code).toBe(status.UNAUTHENTICATED);

    // A rotation asked of b is carried out by a, which holds the stream.
    const rotated = await new Promise<{ requested: boolean; rotated: boolean }>((resolve, reject) =>
      b.client.cluster.rotateAgent({ name: 'roamer' }, (err, res) => (err ? reject(err) : resolve(res))),
    );
    expect(rotated).toEqual({ requested: true, rotated: true });
    expect(readCredential(workDir)).not.toBe(credential);
    expect((await hello(b.cp.address, { name: 'roamer', credential })).code).toBe(status.UNAUTHENTICATED);

    const revoked = await new Promise<boolean>((resolve, reject) =>
      b.client.cluster.revokeAgent({ name: 'roamer' }, (err, res) => (err ? reject(err) : resolve(res.revoked))),
    );
    expect(revoked).toBe(true);
    const err = (await within(agent.fatal, { what: 'peer-a to cut the agent off', timeoutMs: 1_000 })) as ServiceError;
    expect(err.code).toBe(status.UNAUTHENTICATED);
    expect((await hello(a.cp.address, { name: 'roamer', credential: readCredential(workDir) })).code).toBe(status.UNAUTHENTICATED);
  });
});
