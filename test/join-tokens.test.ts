/**
 * Join tokens (`runmesh tokens create --role agent`), over real gRPC against a
 * real in-process control plane: real Agents enrol with them and get their
 * labels; a use is consumed per enrolment and a used-up, expired or revoked
 * token, or an API token of another role, is refused with UNAUTHENTICATED;
 * the static `--join-token` still enrols; the real CLI creates one.
 */
import { credentials, status, type ServiceError } from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../agent/agent.js';
import { ControlPlane } from '../control-plane/server.js';
import { AgentServiceClient, type ConnectResponse } from '../proto/gen/runmesh/v1/agent.js';
import { AgentState } from '../proto/gen/runmesh/v1/cluster.js';
import { TokenServiceClient, type CreateTokenRequest, type CreateTokenResponse } from '../proto/gen/runmesh/v1/token.js';
import { PROTOCOL_VERSION } from '../proto/protocol.js';
import { isReservedLabel } from '../proto/executor-labels.js';
import { adminToken, bearer, TestClient } from './support/client.js';
import { run, tempDir } from './support/processes.js';
import { waitUntil, within } from './support/wait.js';

const STATIC = 'join-tokens-static-token';
const lines: string[] = [];
const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
/** Every join token made here: none may appear in a log line. */
const secrets: string[] = [];

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  const all = lines.splice(0).join('');
  for (const s of [STATIC, ...secrets.splice(0)]) expect(all).not.toContain(s.slice(-43));
  expect(all).not.toMatch(/rma_[A-Za-z0-9_-]{43}/);
});

interface Cluster {
  cp: ControlPlane;
  client: TestClient;
  admin: string;
  create: (req: Partial<CreateTokenRequest>) => Promise<string>;
}

async function cluster(): Promise<Cluster> {
  const cp = await ControlPlane.start({
    listen: ['127.0.0.1:0'],
    httpListen: '127.0.0.1:0',
    dataDir: await tempDir('runmesh-join-'),
    joinToken: STATIC,
    logger: log,
  });
  const admin = adminToken(cp.options.dataDir);
  const client = new TestClient(cp.address, admin);
  const tokens = new TokenServiceClient(cp.address, credentials.createInsecure(), { interceptors: [bearer(admin)] });
  cleanups.push(
    () => cp.close(),
    () => client.close(),
    () => tokens.close(),
  );
  const create = async (req: Partial<CreateTokenRequest>): Promise<string> => {
    const full: CreateTokenRequest = { name: '', role: 'agent', tenants: [], ttlSeconds: 0, join: undefined, ...req };
    const res = await new Promise<CreateTokenResponse>((resolve, reject) =>
      tokens.createToken(full, (err, r) => (err ? reject(err) : resolve(r))),
    );
    secrets.push(res.token);
    return res.token;
  };
  return { cp, client, admin, create };
}

/** One raw Hello; resolves with the Welcome or the status that ended the stream. */
async function hello(
  address: string,
  name: string,
  joinToken: string,
): Promise<{ welcome?: ConnectResponse; code?: number; details?: string }> {
  const raw = new AgentServiceClient(address, credentials.createInsecure());
  const call = raw.connect();
  cleanups.push(
    () => call.cancel(),
    () => raw.close(),
  );
  const answer = new Promise<{ welcome?: ConnectResponse; code?: number; details?: string }>((resolve) => {
    call.on('data', (m: ConnectResponse) => m.msg?.$case === 'welcome' && resolve({ welcome: m }));
    call.on('error', (e: ServiceError) => resolve({ code: e.code, details: e.details }));
  });
  call.write({
    msg: {
      $case: 'hello',
      value: {
        name,
        joinToken,
        credential: '',
        labels: {},
        capacity: { slots: 1, cpuMillis: 0, memoryMb: 0 },
        version: 'test',
        protocolVersion: PROTOCOL_VERSION,
        containment: '',
        held: [],
        hostname: 'test',
      },
    },
  });
  return within(answer, { what: 'Welcome or an error', timeoutMs: 10_000 });
}

async function startAgent(server: string, name: string, joinToken: string, labels: Record<string, string> = {}, workDir?: string) {
  const agent = new Agent({
    servers: [server],
    joinToken,
    name,
    labels,
    workDir: workDir ?? (await tempDir('runmesh-join-agent-')),
    standbySupervisor: false,
    logger: log,
  });
  cleanups.push(() => agent.close());
  await agent.start();
  return agent;
}

/** An agent's labels without the ones it sets itself (`runmesh.io/executor-*`). */
const operatorLabels = (labels: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(labels).filter(([k]) => !isReservedLabel(k)));

const readyAgent = (client: TestClient, name: string) =>
  waitUntil(async () => (await client.agents()).agents.find((a) => a.name === name && a.state === AgentState.AGENT_STATE_READY), {
    what: `agent ${name} to be ready`,
    timeoutMs: 15_000,
  });

const refused = (r: { welcome?: ConnectResponse; code?: number; details?: string }, pattern: RegExp): void => {
  expect(r.welcome).toBeUndefined();
  expect(r.code, r.details).toBe(status.UNAUTHENTICATED);
  expect(r.details).toMatch(pattern);
};

describe('join tokens', () => {
  it('a single-use token enrols one agent, with its labels over the agent’s own, and is then refused for a second name', async () => {
    const { cp, client, create } = await cluster();
    const token = await create({ join: { uses: 1, labels: { pool: 'ci' } } });
    const workDir = await tempDir('runmesh-join-agent-');
    const agent = await startAgent(cp.address, 'first', token, { pool: 'own', os: 'linux' }, workDir);
    const seen = await readyAgent(client, 'first');
    expect(operatorLabels(seen.labels)).toEqual({ pool: 'ci', os: 'linux' });

    const second = await hello(cp.address, 'second', token);
    refused(second, /unknown, revoked or used up/);
    expect(second.details).not.toContain(token.slice(-43));

    // The labels are the enrolment's: they hold when the agent reconnects with its credential.
    await agent.close();
    await startAgent(cp.address, 'first', token, { pool: 'own' }, workDir);
    await waitUntil(async () => (await client.agents()).agents.find((a) => a.name === 'first' && a.labels.pool === 'ci' && !a.labels.os), {
      what: 'the restarted agent with the token labels',
      timeoutMs: 15_000,
    });
  });

  it('a token with --uses 2 enrols two agents, and no third', async () => {
    const { cp, create } = await cluster();
    const token = await create({ join: { uses: 2, labels: {} } });
    expect((await hello(cp.address, 'one', token)).welcome).toBeDefined();
    expect((await hello(cp.address, 'two', token)).welcome).toBeDefined();
    refused(await hello(cp.address, 'three', token), /used up/);
  });

  it('of concurrent enrolments with a --uses 2 token exactly two win', async () => {
    const { cp, create } = await cluster();
    const token = await create({ join: { uses: 2, labels: {} } });
    const all = await Promise.all(['r1', 'r2', 'r3', 'r4', 'r5'].map((name) => hello(cp.address, name, token)));
    expect(all.filter((r) => r.welcome).length).toBe(2);
    for (const r of all.filter((x) => !x.welcome)) expect(r.code, r.details).toBe(status.UNAUTHENTICATED);
  });

  it('refuses an expired token, a revoked token, and an admin API token', async () => {
    const { cp, admin, create } = await cluster();
    const brief = await create({ ttlSeconds: 1 });
    await new Promise((r) => setTimeout(r, 1_100));
    refused(await hello(cp.address, 'late', brief), /expired at/);

    const revoked = await create({});
    const tokens = new TokenServiceClient(cp.address, credentials.createInsecure(), { interceptors: [bearer(admin)] });
    cleanups.push(() => tokens.close());
    const id = revoked.split('_')[1]!;
    await new Promise((resolve, reject) => tokens.revokeToken({ id }, (err, r) => (err ? reject(err) : resolve(r))));
    refused(await hello(cp.address, 'gone', revoked), /unknown, revoked or used up/);

    refused(await hello(cp.address, 'admin', admin), /admin API token, not a join token/);
    const live = await create({});
    refused(await hello(cp.address, 'forged', `${live.slice(0, 21)}${'A'.repeat(43)}`), /unknown, revoked or used up/);
  });

  it('the static --join-token still enrols', async () => {
    const { cp, client } = await cluster();
    await startAgent(cp.address, 'static', STATIC);
    await readyAgent(client, 'static');
  });

  it('refuses bad uses, ttl and labels with INVALID_ARGUMENT naming the field', async () => {
    const { create } = await cluster();
    const refusal = (req: Partial<CreateTokenRequest>): Promise<ServiceError> =>
      create(req).then(
        () => {
          throw new Error('created');
        },
        (err: ServiceError) => err,
      );
    const tooMany = await refusal({ join: { uses: 1001, labels: {} } });
    expect(tooMany.code).toBe(status.INVALID_ARGUMENT);
    expect(tooMany.details).toMatch(/join\.uses/);
    expect((await refusal({ role: 'viewer', tenants: ['a'], join: { uses: 2, labels: {} } })).details).toMatch(/join/);
    expect((await refusal({ join: { uses: 0, labels: { 'bad key': 'x' } } })).details).toMatch(/join\.labels/);
    // A token cannot give its agents an executor they may not have: those labels are the agent's own report.
    expect((await refusal({ join: { uses: 1, labels: { 'runmesh.io/executor-sandbox': 'true' } } })).details).toMatch(
      /join\.labels: label key "runmesh.io\/executor-sandbox" is reserved/,
    );
    expect((await refusal({ ttlSeconds: 31 * 24 * 3600 })).details).toMatch(/ttl_seconds/);
  });

  it('`runmesh tokens create --role agent --uses 1 --ttl 30m --labels pool=ci` prints a join token that enrols an agent', async () => {
    const { cp, client, admin } = await cluster();
    const cli = run(['tokens', 'create', '--role', 'agent', '--uses', '1', '--ttl', '30m', '--labels', 'pool=ci', '--server', cp.address], {
      RUNMESH_TOKEN: admin,
    });
    await waitUntil(() => cli.proc.exitCode !== null, { what: 'runmesh tokens create to exit', timeoutMs: 15_000, show: cli.output });
    expect(cli.proc.exitCode, cli.output()).toBe(0);
    const token = /rmt_[0-9a-f]{16}_[A-Za-z0-9_-]{43}/.exec(cli.output())?.[0];
    expect(token, cli.output()).toBeDefined();
    secrets.push(token!);
    await startAgent(cp.address, 'from-cli', token!);
    expect(operatorLabels((await readyAgent(client, 'from-cli')).labels)).toEqual({ pool: 'ci' });

    const ls = run(['tokens', 'ls', '--server', cp.address], { RUNMESH_TOKEN: admin });
    await waitUntil(() => ls.proc.exitCode !== null, { what: 'runmesh tokens ls to exit', timeoutMs: 15_000, show: ls.output });
    expect(ls.output()).toContain('USES LEFT');
    expect(ls.output()).not.toContain(token!.split('_')[1]!); // used up: gone
  });
});
