/**
 * The console's routes against the authorization table: every route × every
 * role × anonymous, over a real HTTP server in front of the real JobService
 * and ClusterService implementations, gate and token store (embedded store).
 * The expected grants are written from the roles' definitions (issue 15), as
 * in api/authz.test.ts, not read from table.ts. Then the session: cookie
 * attributes, CSRF on mutations, a revoked token ending its session, tenants,
 * audit entries, and bounds (body size, rate).
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/support/processes.js';
import { JobSpec } from '../../proto/gen/runmesh/v1/job.js';
import { ArtifactServiceImpl } from '../api/artifact-service.js';
import { ClusterServiceImpl, type ClusterView } from '../api/cluster-service.js';
import { JobServiceImpl } from '../api/job-service.js';
import { DEFAULT_GATE_LIMITS, Gate, TOKEN_ROLES, TokenStore, type AuditRecord, type Principal, type Role } from '../auth/index.js';
import { DirArtifactStorage } from '../artifacts/dir-storage.js';
import type { ArtifactKey } from '../artifacts/storage.js';
import { JobRepo } from '../jobs/repo.js';
import { JobTracker } from '../jobs/tracker.js';
import { JobWriter } from '../jobs/writer.js';
import { LogStore } from '../logs/log-store.js';
import { KeyRing, SecretStore } from '../secrets/index.js';
import { openEmbeddedStore } from '../store/embedded.js';
import type { Store } from '../store/store.js';
import { attachment } from './artifacts.js';
import { Console, ROUTE_METHODS, type ConsoleDeps } from './index.js';
import { SESSIONS_PREFIX } from './sessions.js';
import type { JobSummary } from './wire.js';

const log = pino({ level: 'silent' });

const ARTIFACTS = ['GET /api/jobs/:id/artifacts', 'GET /api/jobs/:id/artifacts/:attempt/:path'];
const READ_JOBS = ['GET /api/jobs', 'GET /api/jobs/:id', 'GET /api/jobs/:id/log', 'GET /api/events', ...ARTIFACTS];
const CLUSTER_READ = ['GET /api/overview', 'GET /api/agents'];
const CLUSTER_MANAGE = [
  'POST /api/agents/:name/drain',
  'POST /api/agents/:name/cordon',
  'POST /api/agents/:name/uncordon',
  'POST /api/agents/:name/revoke',
];
const EXPECTED: Record<Role, 'all' | string[]> = {
  admin: 'all',
  operator: [...CLUSTER_READ, ...CLUSTER_MANAGE, ...READ_JOBS, 'POST /api/jobs/:id/cancel', 'POST /api/jobs/:id/retry'],
  submitter: [...READ_JOBS, 'POST /api/jobs/:id/cancel', 'POST /api/jobs/:id/retry'],
  viewer: [...READ_JOBS, ...CLUSTER_READ],
  agent: [],
  // A job token passes JobService.Get's and ArtifactService's rows (job.self), for its own job only: another job is not found (404), never 403.
  job: ['GET /api/jobs/:id', ...ARTIFACTS],
};

const EMPTY: ClusterView = {
  agents: () => [],
  peers: () => [],
  leader: () => 'p1',
  unschedulable: () => [],
  drain: async () => false,
  setCordoned: async () => undefined,
  revokeAgent: async () => false,
  rotateAgent: async () => ({ requested: false, rotated: false }),
};

let store: Store;
let tracker: JobTracker;
let tokens: TokenStore;
let logs: LogStore;
let web: Console;
let web2: Console;
let http2: Server;
let base2: string;
let jobs: JobServiceImpl;
let http: Server;
let base: string;
const audited: AuditRecord[] = [];
const token: Partial<Record<Role, string>> = {};
let jobA: string;
let jobB: string;

beforeAll(async () => {
  const dir = await tempDir('runmesh-console-');
  store = await openEmbeddedStore({ dir });
  const repo = new JobRepo(store);
  tracker = new JobTracker(repo, log);
  await tracker.start();
  tokens = await TokenStore.open(store, log);
  logs = new LogStore(`${dir}/logs`);
  const limits = { ...DEFAULT_GATE_LIMITS, authFailures: { perSecond: 1000, burst: 1000 } };
  const gate = new Gate({ tokens, log, limits, audit: { record: (e) => void audited.push(e) } });
  const writer = JobWriter.forAnyPeer({ repo, tracker, logger: log });
  const retention = { ageMs: 0, maxEnded: 0 };
  const locator = { here: () => true, read: () => (async function* () {})() };
  jobs = new JobServiceImpl({
    gate,
    repo,
    tracker,
    writer,
    logs,
    logger: log,
    cancelOnAgent: async () => false,
    waitingReason: () => undefined,
    logLocator: locator,
    retention,
    admit: (records) => writer.create(records),
    secrets: new SecretStore(store, KeyRing.of(randomBytes(32))),
  });
  const cluster = new ClusterServiceImpl({ gate, view: EMPTY, tracker, logger: log, version: 'test' });
  // A lone peer holds every copy: the service reads this peer's artifact storage.
  const stored = new DirArtifactStorage(`${dir}/artifacts`);
  const source = {
    list: (key: ArtifactKey) => stored.list(key),
    read: (key: ArtifactKey, _holders: readonly string[], path: string, signal: AbortSignal) => stored.read(key, path, 0, signal),
  };
  const artifacts = new ArtifactServiceImpl({ gate, repo, source, retention, logger: log });
  const deps: ConsoleDeps = {
    gate,
    jobs,
    artifacts,
    cluster,
    logSource: { repo, tracker, logs, locator, retention },
    logger: log,
    tls: false,
    breaker: () => 'closed',
    rate: { perSecond: 10_000, burst: 10_000 },
    store,
  };
  web = new Console(deps);
  [http, base] = await serve(web);
  // A second peer's console on the same store, as behind a load balancer.
  web2 = new Console(deps);
  [http2, base2] = await serve(web2);
  for (const role of TOKEN_ROLES)
    token[role] = (await tokens.create({ name: `t-${role}`, role, tenants: role === 'admin' ? [] : ['a'], ttlMs: 0 })).token;
  jobA = await seed('a');
  jobB = await seed('b');
});

async function serve(c: Console): Promise<[Server, string]> {
  const server = createServer((req, res) => void c.route(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return [server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`];
}

afterAll(async () => {
  for (const [c, server] of [
    [web, http],
    [web2, http2],
  ] as const) {
    c?.close();
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
  }
  await tracker?.close();
  await tokens?.close();
  await logs?.close();
  await store?.close();
});

const ADMIN: Principal = { id: 'admin', name: 'admin', role: 'admin', tenants: 'all' };

async function seed(tenant: string): Promise<string> {
  const { job } = await jobs.submit({ spec: JobSpec.fromPartial({ name: `job-${tenant}`, argv: ['true'], tenant }) }, ADMIN);
  return job!.id;
}

function url(path: string, job = jobA): string {
  return base + path.replace(':id', job).replace(':name', 'no-such-agent').replace(':attempt', '1').replace(':path', 'dist%2Fout.txt');
}

/** The status of a call; an event stream's 200 is read from its headers, then the stream is dropped. */
async function status(verb: string, path: string, bearer: string | undefined, job = jobA): Promise<number> {
  const abort = new AbortController();
  const headers: Record<string, string> = bearer ? { authorization: `Bearer ${bearer}` } : {};
  const res = await fetch(url(path, job), { method: verb, headers, signal: abort.signal });
  abort.abort();
  return res.status;
}

describe('console routes × roles (the authorization table)', () => {
  it('lists a route for every handler, each naming a method of the table', () => {
    expect(ROUTE_METHODS.length).toBe(14);
  });

  for (const [verb, path, method] of ROUTE_METHODS) {
    const name = `${verb} ${path}`;
    it(`${name} (${method})`, async () => {
      expect(await status(verb, path, undefined)).toBe(401);
      for (const role of TOKEN_ROLES) {
        const grants = EXPECTED[role];
        const may = grants === 'all' || grants.includes(name);
        const got = await status(verb, path, token[role]);
        if (may) expect(got, `${role} ${name}`).not.toBe(403);
        else expect(got, `${role} ${name}`).toBe(403);
        expect(got, `${role} ${name}`).not.toBe(401);
        expect(got, `${role} ${name}`).toBeLessThan(500);
      }
    });
  }

  it("hides another tenant's job as not found, for reads and mutations alike", async () => {
    expect(await status('GET', '/api/jobs/:id', token.viewer, jobB)).toBe(404);
    expect(await status('POST', '/api/jobs/:id/cancel', token.operator, jobB)).toBe(404);
    expect(await status('GET', '/api/jobs/:id/artifacts', token.viewer, jobB)).toBe(404);
    expect(await status('GET', '/api/jobs/:id/artifacts/:attempt/:path', token.viewer, jobB)).toBe(404);
    const page = (await (await fetch(`${base}/api/jobs`, { headers: { authorization: `Bearer ${token.viewer}` } })).json()) as {
      jobs: JobSummary[];
    };
    expect(page.jobs.map((j) => j.id)).not.toContain(jobB);
  });

  it('names a download safely: quotes and non-ASCII only in the encoded filename*', () => {
    expect(attachment('app.tar')).toBe(`attachment; filename="app.tar"; filename*=UTF-8''app.tar`);
    expect(attachment('a"b\\c ü;(1).txt')).toBe(
      `attachment; filename="a_b_c _;(1).txt"; filename*=UTF-8''a%22b%5Cc%20%C3%BC%3B%281%29.txt`,
    );
  });

  it('lists jobs newest first with the filters List applies, paging to older ones', async () => {
    const ids: string[] = [];
    for (const selector of ['pool=ci', 'pool=ci,gpu', 'pool=ci']) {
      ids.push(
        (await jobs.submit({ spec: JobSpec.fromPartial({ name: 'filtered', argv: ['true'], tenant: 'a', selector }) }, ADMIN)).job!.id,
      );
    }
    const page = async (query: string): Promise<{ status: number; body: { jobs?: JobSummary[]; next?: string; error?: string } }> => {
      const res = await fetch(`${base}/api/jobs?${query}`, { headers: { authorization: `Bearer ${token.viewer}` } });
      return { status: res.status, body: (await res.json()) as { jobs?: JobSummary[]; next?: string; error?: string } };
    };
    const first = await page('name=filt&label=pool%3Dci&limit=2');
    expect(first.body.jobs!.map((j) => j.id)).toEqual([ids[2], ids[1]]);
    expect(first.body.next).toBe(ids[1]);
    const older = await page(`name=filt&label=pool%3Dci&limit=2&before=${ids[1]}`);
    expect([older.body.jobs!.map((j) => j.id), older.body.next]).toEqual([[ids[0]], '']);
    expect((await page('name=filt&label=gpu')).body.jobs!.map((j) => j.id)).toEqual([ids[1]]);
    const bad = await page('label=pool%21%3Dci');
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('labels:');
  });

  it('records each mutation in the audit trail once, refused or not', async () => {
    audited.length = 0;
    await status('POST', '/api/agents/:name/cordon', token.viewer);
    await status('POST', '/api/agents/:name/revoke', token.admin);
    expect(audited.map((e) => [e.method, e.target, e.result])).toEqual([
      ['ClusterService.Cordon', 'no-such-agent', 'PERMISSION_DENIED'],
      ['ClusterService.RevokeAgent', 'no-such-agent', 'OK'],
    ]);
  });
});

describe('console sessions', () => {
  async function signIn(t: string): Promise<{ cookie: string; csrf: string; setCookie: string }> {
    const res = await fetch(`${base}/api/session`, { method: 'POST', body: JSON.stringify({ token: t }) });
    expect(res.status).toBe(200);
    const setCookie = res.headers.get('set-cookie')!;
    return { setCookie, cookie: setCookie.split(';')[0]!, csrf: ((await res.json()) as { csrf: string }).csrf };
  }

  it('sets an HttpOnly, SameSite=Strict cookie holding no token, and records the sign-in', async () => {
    audited.length = 0;
    const s = await signIn(token.operator!);
    expect(audited.map((e) => [e.method, e.result])).toEqual([['Console.SignIn', 'OK']]);
    expect(s.setCookie).toMatch(/HttpOnly/);
    expect(s.setCookie).toMatch(/SameSite=Strict/);
    expect(s.setCookie).not.toContain(token.operator!);
    const me = (await (await fetch(`${base}/api/session`, { headers: { cookie: s.cookie } })).json()) as {
      role: string;
      allowed: string[];
    };
    expect(me.role).toBe('operator');
    expect(me.allowed).toContain('JobService.Cancel');
    expect(me.allowed).not.toContain('JobService.Submit');
  });

  it('refuses a mutation without the CSRF header or from another origin', async () => {
    const s = await signIn(token.operator!);
    const cancel = (headers: Record<string, string>) =>
      fetch(`${base}/api/agents/no-such-agent/cordon`, { method: 'POST', headers: { cookie: s.cookie, ...headers } }).then((r) => r.status);
    expect(await cancel({})).toBe(403);
    expect(await cancel({ 'x-runmesh-csrf': 'wrong' })).toBe(403);
    expect(await cancel({ 'x-runmesh-csrf': s.csrf, origin: 'http://evil.example' })).toBe(403);
    expect(await cancel({ 'x-runmesh-csrf': s.csrf })).toBe(404); // allowed through: the agent is not there
  });

  it('ends the session when its token is revoked', async () => {
    const t = await tokens.create({ name: 'short', role: 'viewer', tenants: ['a'], ttlMs: 0 });
    const s = await signIn(t.token);
    expect((await fetch(`${base}/api/jobs`, { headers: { cookie: s.cookie } })).status).toBe(200);
    await tokens.revoke(t.record.id);
    expect((await fetch(`${base}/api/jobs`, { headers: { cookie: s.cookie } })).status).toBe(401);
  });

  it('holds on every peer: signed in on one, used on the other, signed out there, ended on both; the store holds no token', async () => {
    const s = await signIn(token.viewer!);
    const jobsOn = (at: string) => fetch(`${at}/api/jobs`, { headers: { cookie: s.cookie } }).then((r) => r.status);
    expect([await jobsOn(base), await jobsOn(base2)]).toEqual([200, 200]);
    const held = await store.range(SESSIONS_PREFIX);
    expect(held.kvs.length).toBeGreaterThan(0);
    for (const kv of held.kvs) {
      expect(kv.value).not.toContain(token.viewer!);
      expect(kv.key).not.toContain(s.cookie.split('.')[1]!); // keyed by a hash of the cookie's secret, not the secret
    }
    const out = await fetch(`${base2}/api/session`, { method: 'DELETE', headers: { cookie: s.cookie, 'x-runmesh-csrf': s.csrf } });
    expect(out.status).toBe(200);
    expect([await jobsOn(base), await jobsOn(base2)]).toEqual([401, 401]);
  });

  it('refuses a bad token, agent tokens, and oversized bodies', async () => {
    expect((await fetch(`${base}/api/session`, { method: 'POST', body: JSON.stringify({ token: 'rmt_nope' }) })).status).toBe(401);
    expect((await fetch(`${base}/api/session`, { method: 'POST', body: JSON.stringify({ token: token.agent }) })).status).toBe(403);
    expect((await fetch(`${base}/api/session`, { method: 'POST', body: 'x'.repeat(100_000) })).status).toBe(413);
  });
});
