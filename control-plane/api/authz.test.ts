/**
 * The authorization table, walked: every method of JobService, ClusterService,
 * TokenService, AuditService and SecretService × every role × anonymous, on a real gRPC server (port 0)
 * over the real services and token store on an embedded store. The expected
 * grants below are written from the roles' definitions (issue 15), not read
 * from table.ts, so a wrong row in the table fails here. Then tenants: a job
 * of another tenant does not exist for the caller.
 */
import { Client, credentials, Metadata, Server, ServerCredentials, status, type ServiceError } from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterServiceService, type Agent } from '../../proto/gen/runmesh/v1/cluster.js';
import { JobServiceService, JobSpec, JobState, type Job } from '../../proto/gen/runmesh/v1/job.js';
import { TokenServiceService } from '../../proto/gen/runmesh/v1/token.js';
import { AuditServiceService } from '../../proto/gen/runmesh/v1/audit.js';
import { JobIdentityServiceService } from '../../proto/gen/runmesh/v1/identity.js';
import { SecretServiceService } from '../../proto/gen/runmesh/v1/secret.js';
import { ScheduleServiceService, ScheduleSpec } from '../../proto/gen/runmesh/v1/schedule.js';
import { TemplateServiceService } from '../../proto/gen/runmesh/v1/template.js';
import { PipelineServiceService } from '../../proto/gen/runmesh/v1/pipeline.js';
import { waitUntil } from '../../test/support/wait.js';
import { Gate, METHOD_VERBS, ROLES, TOKEN_ROLES, type Role, type TokenStore } from '../auth/index.js';
import { assign, finish } from '../jobs/lifecycle.js';
import type { JobTracker } from '../jobs/tracker.js';
import type { Store } from '../store/store.js';
import { ClusterServiceImpl, type ClusterView } from './cluster-service.js';
import { startApi, type ApiHarness } from './testing/harness.js';
import { ROUTE_METHODS } from '../console/routes.js';
import { HookServiceService } from '../../proto/gen/runmesh/v1/hook.js';
import { ArtifactServiceService } from '../../proto/gen/runmesh/v1/artifact.js';
import { sign, SIGNED_ROUTES } from '../hooks/index.js';
import { createHttpServer, listenHttp } from '../http/http-server.js';

const log = pino({ level: 'silent' });

/** What each role may call, as issue 15 defines the roles. */
const READ_JOBS = [
  'JobService.Get',
  'JobService.List',
  'JobService.Watch',
  'JobService.Logs',
  'PipelineService.GetPipeline',
  'PipelineService.ListPipelines',
  'ArtifactService.ListArtifacts',
  'ArtifactService.GetArtifact',
];
const CLUSTER_READ = ['ClusterService.Status', 'ClusterService.ListAgents', 'ClusterService.GetAgent'];
const CLUSTER_VERBS = [
  'ClusterService.Drain',
  'ClusterService.Cordon',
  'ClusterService.Uncordon',
  'ClusterService.RevokeAgent',
  'ClusterService.RotateAgent',
];
/** Issue 18: submitters manage their tenants' secrets, operators may list them, only admins re-encrypt them. */
const SECRETS_WRITE = ['SecretService.SetSecret', 'SecretService.DeleteSecret'];
/** Issue 20: schedules and templates submit jobs; reading them is reading jobs. */
const SCHEDULE_READS = [
  'ScheduleService.ListSchedules',
  'ScheduleService.GetSchedule',
  'TemplateService.ListTemplates',
  'TemplateService.GetTemplate',
];
const SCHEDULE_WRITES = [
  'ScheduleService.CreateSchedule',
  'ScheduleService.PauseSchedule',
  'ScheduleService.ResumeSchedule',
  'ScheduleService.DeleteSchedule',
  'ScheduleService.TriggerSchedule',
  'TemplateService.CreateTemplate',
  'TemplateService.DeleteTemplate',
  'TemplateService.SubmitTemplate',
];
/** Issue 21: webhooks are the admin's to make (an inbound one submits jobs, an outbound one sends events out); operators may look. */
const HOOK_READS = ['HookService.ListHooks', 'HookService.ListDeliveries'];
const EXPECTED: Record<Role, 'all' | string[]> = {
  admin: 'all',
  // Issue 20: operators and submitters re-drive failed and dead jobs (the dead-letter queue).
  operator: [
    ...CLUSTER_READ,
    ...CLUSTER_VERBS,
    ...READ_JOBS,
    'JobService.Cancel',
    'PipelineService.CancelPipeline',
    'JobService.Retry',
    'AuditService.ListAudit',
    'SecretService.ListSecrets',
    ...SCHEDULE_READS,
    ...HOOK_READS,
  ],
  submitter: [
    'JobService.Submit',
    'JobService.SubmitBatch',
    ...READ_JOBS,
    'JobService.Cancel',
    'PipelineService.CancelPipeline',
    'JobService.Retry',
    ...SECRETS_WRITE,
    'SecretService.ListSecrets',
    ...SCHEDULE_READS,
    ...SCHEDULE_WRITES,
  ],
  viewer: [...READ_JOBS, ...CLUSTER_READ, ...SCHEDULE_READS],
  agent: [],
  // A job token (issue 18): its own job only, which the table test's requests do not name (so NOT_FOUND, never PERMISSION_DENIED).
  job: ['JobService.Get', 'JobIdentityService.IssueIdToken', 'ArtifactService.ListArtifacts', 'ArtifactService.GetArtifact'],
};

/** What only a job token may call. */
const JOB_ONLY = ['JobIdentityService.IssueIdToken'];

const SERVICES = {
  JobService: JobServiceService,
  ClusterService: ClusterServiceService,
  TokenService: TokenServiceService,
  AuditService: AuditServiceService,
  JobIdentityService: JobIdentityServiceService,
  SecretService: SecretServiceService,
  PipelineService: PipelineServiceService,
  ScheduleService: ScheduleServiceService,
  TemplateService: TemplateServiceService,
  HookService: HookServiceService,
  ArtifactService: ArtifactServiceService,
} as const;

interface Method {
  name: string;
  path: string;
  responseStream: boolean;
  requestSerialize: (v: never) => Buffer;
  responseDeserialize: (b: Buffer) => unknown;
}

const methods: Method[] = Object.entries(SERVICES).flatMap(([service, def]) =>
  (Object.values(def) as unknown as Array<Omit<Method, 'name'>>).map((m) => ({ ...m, name: `${service}.${m.path.split('/').pop()}` })),
);

class NoAgents implements ClusterView {
  agents(): Agent[] {
    return [];
  }
  peers() {
    return [];
  }
  leader(): string {
    return 'p1';
  }
  unschedulable() {
    return [];
  }
  async drain(): Promise<boolean> {
    return false;
  }
  async setCordoned(): Promise<void> {}
  async revokeAgent(): Promise<boolean> {
    return false;
  }
  async rotateAgent(): Promise<{ requested: boolean; rotated: boolean }> {
    return { requested: false, rotated: false };
  }
}

let api: ApiHarness;
let store: Store;
let tracker: JobTracker;
let tokens: TokenStore;
let client: Client;
/** A queued job of tenant a, and one of tenant b. */
let jobA: Job;
let jobB: Job;
/** A job of tenant a whose first attempt is assigned: the job token (token.job) is this attempt's. */
let jobRunning: Job;
const token: Partial<Record<Role | 'ab', string>> = {};

beforeAll(async () => {
  api = await startApi({ view: new NoAgents() });
  ({ store, tracker, tokens } = api);
  client = new Client(api.address, credentials.createInsecure());
  for (const role of TOKEN_ROLES)
    token[role] = (await tokens.create({ name: `t-${role}`, role, tenants: role === 'admin' ? [] : ['a'], ttlMs: 0 })).token;
  token.ab = (await tokens.create({ name: 't-ab', role: 'submitter', tenants: ['a', 'b'], ttlMs: 0 })).token;
  jobA = (await submit(token.admin!, { argv: ['true'], tenant: 'a' })) as Job;
  jobB = (await submit(token.admin!, { argv: ['true'], tenant: 'b' })) as Job;
  jobRunning = (await submit(token.admin!, { argv: ['true'], tenant: 'a' })) as Job;
  await api.writer.write(jobRunning.id, (r) => assign(r, 'agent-1', new Date()));
  token.job = api.jobTokens.mint(jobRunning.id, 1);
});

afterAll(async () => {
  client?.close();
  await api?.close();
});

function metadata(bearer: string | undefined): Metadata {
  const md = new Metadata();
  if (bearer !== undefined) md.set('authorization', `Bearer ${bearer}`);
  return md;
}

/** The status code a call ends with (OK: 0); a server stream that is still open after a moment counts as OK. */
function codeOf(m: Method, request: unknown, bearer: string | undefined): Promise<status> {
  const serialize = m.requestSerialize as (v: unknown) => Buffer;
  if (!m.responseStream) {
    return new Promise((resolve) =>
      client.makeUnaryRequest(m.path, serialize, m.responseDeserialize, request, metadata(bearer), (err: ServiceError | null) =>
        resolve(err ? err.code : status.OK),
      ),
    );
  }
  return new Promise((resolve) => {
    const call = client.makeServerStreamRequest(m.path, serialize, m.responseDeserialize, request, metadata(bearer));
    const timer = setTimeout(() => {
      call.cancel();
      resolve(status.OK);
    }, 300);
    call.on('data', () => undefined);
    call.on('error', (err: ServiceError) => {
      clearTimeout(timer);
      resolve(err.code === status.CANCELLED ? status.OK : err.code);
    });
    call.on('end', () => {
      clearTimeout(timer);
      resolve(status.OK);
    });
  });
}

async function submit(bearer: string, spec: Partial<JobSpec>): Promise<Job | ServiceError> {
  return new Promise((resolve) =>
    client.makeUnaryRequest(
      JobServiceService.submit.path,
      JobServiceService.submit.requestSerialize,
      JobServiceService.submit.responseDeserialize,
      { spec: JobSpec.fromPartial(spec) },
      metadata(bearer),
      (err, res) => resolve(err ?? res!.job!),
    ),
  );
}

/** A request each method accepts from a caller it lets in (it may still answer NOT_FOUND and the like). */
function requestFor(name: string): unknown {
  const requests: Record<string, unknown> = {
    'JobService.Submit': { spec: JobSpec.fromPartial({ argv: ['true'] }) },
    'JobService.SubmitBatch': { specs: [JobSpec.fromPartial({ argv: ['true'] })] },
    'JobService.Get': { id: jobA.id },
    'JobService.List': {
      states: [],
      namePrefix: '',
      tenant: '',
      pageSize: 10,
      pageToken: '',
      oldestFirst: false,
      labels: '',
      createdAfter: undefined,
      createdBefore: undefined,
    },
    'JobService.Watch': { ids: [] },
    'JobService.Logs': { id: jobA.id, attempt: 0, fromSeq: 0, follow: false },
    'JobService.Cancel': { id: jobA.id, reason: 'authz test' },
    'JobService.Retry': { id: jobA.id, reason: 'authz test' },
    'ClusterService.Status': {},
    'ClusterService.ListAgents': {},
    'ClusterService.GetAgent': { name: 'nobody' },
    'ClusterService.Drain': { name: 'nobody', reason: 'test' },
    'ClusterService.Cordon': { name: 'nobody' },
    'ClusterService.Uncordon': { name: 'nobody' },
    'ClusterService.RevokeAgent': { name: 'nobody' },
    'ClusterService.RotateAgent': { name: 'nobody' },
    'TokenService.CreateToken': { name: 'made', role: 'viewer', tenants: ['a'], ttlSeconds: 60 },
    'TokenService.ListTokens': {},
    'TokenService.RevokeToken': { id: '0000000000000000' },
    'AuditService.ListAudit': { since: '', actor: '', limit: 10, pageToken: '' },
    'JobIdentityService.IssueIdToken': { audience: 'authz-test' },
    'SecretService.SetSecret': { name: 'AUTHZ_SECRET', tenant: 'a', value: 'authz-value' },
    'SecretService.ListSecrets': { tenant: '' },
    'SecretService.DeleteSecret': { name: 'NOT_THERE', tenant: 'a' },
    'SecretService.RotateSecretsKey': {},
    'PipelineService.GetPipeline': { id: 'p_00000000000000000000000' },
    'PipelineService.CancelPipeline': { id: 'p_00000000000000000000000', reason: 'authz test' },
    'PipelineService.ListPipelines': { tenant: '', pageSize: 0, pageToken: '' },
    'ScheduleService.CreateSchedule': {
      spec: ScheduleSpec.fromPartial({ name: 'authz', cron: '0 0 1 1 *', job: JobSpec.fromPartial({ argv: ['true'] }) }),
    },
    'ScheduleService.ListSchedules': { tenant: '' },
    'ScheduleService.GetSchedule': { name: 'not-there', tenant: '' },
    'ScheduleService.PauseSchedule': { name: 'not-there', tenant: '' },
    'ScheduleService.ResumeSchedule': { name: 'not-there', tenant: '' },
    'ScheduleService.DeleteSchedule': { name: 'not-there', tenant: '' },
    'ScheduleService.TriggerSchedule': { name: 'not-there', tenant: '' },
    'TemplateService.CreateTemplate': { name: 'authz', tenant: '', text: 'command: ["true"]\n', replace: true },
    'TemplateService.ListTemplates': { tenant: '' },
    'TemplateService.GetTemplate': { name: 'not-there', tenant: '' },
    'TemplateService.DeleteTemplate': { name: 'not-there', tenant: '' },
    'TemplateService.SubmitTemplate': { name: 'not-there', tenant: '', params: {} },
    'HookService.CreateHook': { name: 'authz', tenant: '', template: 'not-there', paramMap: {}, url: '', events: [], secret: '' },
    'HookService.ListHooks': { tenant: '' },
    'HookService.DeleteHook': { name: 'not-there', tenant: '' },
    'HookService.ListDeliveries': { name: 'not-there', tenant: '' },
    'ArtifactService.ListArtifacts': { jobId: jobA.id, attempt: 0, fromNeed: '' },
    'ArtifactService.GetArtifact': { jobId: jobA.id, attempt: 0, fromNeed: '', path: 'out.txt' },
  };
  if (!(name in requests)) throw new Error(`no request for ${name}: add one (and a row to the authorization table)`);
  return requests[name];
}

describe('the authorization table', () => {
  it('names every method of every client-facing service', () => {
    expect(methods.map((m) => m.name).sort()).toEqual(Object.keys(METHOD_VERBS).sort());
  });

  it("decides every console HTTP route as one of its methods, so the grants walked here are the route's too", () => {
    // The routes' own walk (every route × role × anonymous, over HTTP with session and CSRF) is control-plane/console/console.test.ts.
    for (const [verb, path, method] of ROUTE_METHODS)
      expect({ route: `${verb} ${path}`, known: method in METHOD_VERBS }).toEqual({ route: `${verb} ${path}`, known: true });
    const mutations = ROUTE_METHODS.filter(([verb]) => verb === 'POST').map(([, , method]) => method);
    expect(EXPECTED.viewer === 'all' ? [] : mutations.filter((m) => (EXPECTED.viewer as string[]).includes(m))).toEqual([]);
  });

  it("authenticates the webhook route (POST /hooks/NAME, no token) by the hook's signature alone", async () => {
    // SIGNED_ROUTES: the HTTP routes outside the console's table; a bearer token is no way in, a valid signature is the only one.
    expect(SIGNED_ROUTES).toEqual([['POST', '/hooks/:name', 'X-Hub-Signature-256']]);
    const call = (name: string, request: unknown): Promise<status> =>
      codeOf(
        methods.find((m) => m.name === name)!,
        request,
        token.admin,
      );
    const text = 'params: {sha: {required: true}}\ncommand: [echo, "${{ params.sha }}"]\n';
    expect(await call('TemplateService.CreateTemplate', { name: 'hooked', tenant: 'a', text, replace: true })).toBe(status.OK);
    const secret = 'authz-hook-secret-0123456789';
    const hook = { name: 'authz-in', tenant: 'a', template: 'hooked', paramMap: { sha: 'after' }, url: '', events: [], secret };
    expect(await call('HookService.CreateHook', hook)).toBe(status.OK);
    const http = createHttpServer({ ready: async () => ({ ok: true, detail: '' }), routes: api.httpRoutes });
    const at = await listenHttp(http, '127.0.0.1:0');
    try {
      const body = JSON.stringify({ after: 'abc' });
      const post = async (headers: Record<string, string>): Promise<number> =>
        (await fetch(`http://${at}/hooks/authz-in`, { method: 'POST', body, headers: { 'x-github-delivery': 'd-authz', ...headers } }))
          .status;
      expect(await post({})).toBe(401);
      expect(await post({ authorization: `Bearer ${token.admin}` })).toBe(401);
      expect(await post({ 'x-hub-signature-256': sign('another secret of 20+ bytes', Buffer.from(body)) })).toBe(401);
      expect(await post({ 'x-hub-signature-256': sign(secret, Buffer.from(body)) })).toBe(202);
    } finally {
      http.close();
    }
  });

  it('refuses every method without a token (UNAUTHENTICATED), and with a token that is not one', async () => {
    for (const m of methods) {
      expect({ method: m.name, code: await codeOf(m, requestFor(m.name), undefined) }).toEqual({
        method: m.name,
        code: status.UNAUTHENTICATED,
      });
      expect({ method: m.name, code: await codeOf(m, requestFor(m.name), 'rmt_0123456789abcdef_' + 'x'.repeat(43)) }).toEqual({
        method: m.name,
        code: status.UNAUTHENTICATED,
      });
    }
  });

  for (const role of ROLES) {
    it(`lets ${role} call exactly what the role allows, and answers the rest with PERMISSION_DENIED`, async () => {
      const allowed = EXPECTED[role];
      for (const m of methods) {
        const code = await codeOf(m, requestFor(m.name), token[role]);
        // An admin may do everything but act as a job: only a job token gets a job's ID token.
        const may = allowed === 'all' ? !JOB_ONLY.includes(m.name) : allowed.includes(m.name);
        if (may) expect({ method: m.name, code }).not.toEqual({ method: m.name, code: status.PERMISSION_DENIED });
        else expect({ method: m.name, code }).toEqual({ method: m.name, code: status.PERMISSION_DENIED });
        expect({ method: m.name, code }).not.toEqual({ method: m.name, code: status.UNAUTHENTICATED });
      }
    });
  }
});

describe('tenants', () => {
  const get = (bearer: string, id: string): Promise<status> =>
    codeOf(
      methods.find((m) => m.name === 'JobService.Get')!,
      { id },
      bearer,
    );

  it("makes another tenant's job NOT_FOUND for every reading role, and its own readable", async () => {
    for (const role of ['operator', 'submitter', 'viewer'] as const) {
      expect({ role, own: await get(token[role]!, jobA.id), other: await get(token[role]!, jobB.id) }).toEqual({
        role,
        own: status.OK,
        other: status.NOT_FOUND,
      });
    }
    expect(await get(token.admin!, jobB.id)).toBe(status.OK);
  });

  it("cannot cancel, retry, or read the log of, another tenant's job, and leaves it as it was", async () => {
    const cancel = methods.find((m) => m.name === 'JobService.Cancel')!;
    const retry = methods.find((m) => m.name === 'JobService.Retry')!;
    const logsOf = methods.find((m) => m.name === 'JobService.Logs')!;
    expect(await codeOf(cancel, { id: jobB.id, reason: 'x' }, token.submitter)).toBe(status.NOT_FOUND);
    expect(await codeOf(retry, { id: jobB.id, reason: 'x' }, token.submitter)).toBe(status.NOT_FOUND);
    expect(await codeOf(retry, { id: jobB.id, reason: 'x' }, token.operator)).toBe(status.NOT_FOUND);
    expect(await codeOf(logsOf, { id: jobB.id, attempt: 0, fromSeq: 0, follow: false }, token.submitter)).toBe(status.NOT_FOUND);
    expect(tracker.get(jobB.id)?.record.job.state).toBe(JobState.JOB_STATE_QUEUED);
  });

  it("makes another tenant's pipeline NOT_FOUND, to read and to cancel, and leaves it as it was", async () => {
    const specs = [
      JobSpec.fromPartial({ name: 'build', argv: ['true'], tenant: 'b' }),
      JobSpec.fromPartial({ name: 'test', argv: ['true'], tenant: 'b', needs: ['build'] }),
    ];
    const jobs = await new Promise<Job[]>((resolve, reject) =>
      client.makeUnaryRequest(
        JobServiceService.submitBatch.path,
        JobServiceService.submitBatch.requestSerialize,
        JobServiceService.submitBatch.responseDeserialize,
        { specs },
        metadata(token.admin),
        (err, res) => (err ? reject(err) : resolve(res!.jobs)),
      ),
    );
    const id = jobs[0]!.pipelineId;
    expect(jobs.map((j) => [j.pipelineId, j.state])).toEqual([
      [id, JobState.JOB_STATE_QUEUED],
      [id, JobState.JOB_STATE_WAITING],
    ]);
    const get = methods.find((m) => m.name === 'PipelineService.GetPipeline')!;
    const cancel = methods.find((m) => m.name === 'PipelineService.CancelPipeline')!;
    for (const role of ['operator', 'submitter', 'viewer'] as const)
      expect({ role, code: await codeOf(get, { id }, token[role]) }).toEqual({ role, code: status.NOT_FOUND });
    expect(await codeOf(cancel, { id, reason: 'x' }, token.submitter)).toBe(status.NOT_FOUND);
    expect(await codeOf(get, { id }, token.admin)).toBe(status.OK);
    expect(jobs.map((j) => tracker.get(j.id)?.record.job.state)).toEqual([JobState.JOB_STATE_QUEUED, JobState.JOB_STATE_WAITING]);
    const listed = (bearer: string, tenant: string): Promise<string[]> =>
      new Promise((resolve, reject) =>
        client.makeUnaryRequest(
          PipelineServiceService.listPipelines.path,
          PipelineServiceService.listPipelines.requestSerialize,
          PipelineServiceService.listPipelines.responseDeserialize,
          { tenant, pageSize: 0, pageToken: '' },
          metadata(bearer),
          (err, res) => (err ? reject(err) : resolve(res!.pipelines.map((p) => p.id))),
        ),
      );
    expect([await listed(token.admin!, ''), await listed(token.submitter!, ''), await listed(token.submitter!, 'b')]).toEqual([
      [id],
      [],
      [],
    ]);
  });

  it("takes a new job's tenant from the token: its only tenant, one it names, never another", async () => {
    const own = (await submit(token.submitter!, { argv: ['true'] })) as Job;
    expect(own.spec?.tenant).toBe('a');
    const other = (await submit(token.submitter!, { argv: ['true'], tenant: 'b' })) as ServiceError;
    expect(other.code).toBe(status.PERMISSION_DENIED);
    expect(other.details).toMatch(/spec\.tenant: .*tenant b/);
    const unnamed = (await submit(token.ab!, { argv: ['true'] })) as ServiceError;
    expect(unnamed.code).toBe(status.INVALID_ARGUMENT);
    expect(unnamed.details).toMatch(/spec\.tenant: name one of the token's tenants: a, b/);
    expect(((await submit(token.ab!, { argv: ['true'], tenant: 'b' })) as Job).spec?.tenant).toBe('b');
  });

  it('keeps idempotency keys apart per tenant', async () => {
    const a = (await submit(token.ab!, { argv: ['true'], tenant: 'a', idempotencyKey: 'deploy-1' })) as Job;
    const b = (await submit(token.ab!, { argv: ['true'], tenant: 'b', idempotencyKey: 'deploy-1' })) as Job;
    const again = (await submit(token.ab!, { argv: ['true'], tenant: 'a', idempotencyKey: 'deploy-1' })) as Job;
    expect(b.id).not.toBe(a.id);
    expect(again.id).toBe(a.id);
  });
});

describe('job tokens', () => {
  const call = (name: string, request: unknown, bearer: string | undefined): Promise<status> =>
    codeOf(
      methods.find((m) => m.name === name)!,
      request,
      bearer,
    );

  it('read their own job only: another job of the same tenant is NOT_FOUND, List is refused', async () => {
    expect(await call('JobService.Get', { id: jobRunning.id }, token.job)).toBe(status.OK);
    expect(await call('JobService.Get', { id: jobA.id }, token.job)).toBe(status.NOT_FOUND);
    expect(await call('JobService.Get', { id: jobB.id }, token.job)).toBe(status.NOT_FOUND);
    const list = {
      states: [],
      namePrefix: '',
      tenant: '',
      pageSize: 10,
      pageToken: '',
      oldestFirst: false,
      labels: '',
      createdAfter: undefined,
      createdBefore: undefined,
    };
    expect(await call('JobService.List', list, token.job)).toBe(status.PERMISSION_DENIED);
    expect(await call('JobService.Cancel', { id: jobRunning.id, reason: 'x' }, token.job)).toBe(status.PERMISSION_DENIED);
  });

  it('are refused when forged, when minted for another attempt, and once their attempt ends', async () => {
    const job = (await submit(token.admin!, { argv: ['true'], tenant: 'a' })) as Job;
    await api.writer.write(job.id, (r) => assign(r, 'agent-1', new Date()));
    const good = api.jobTokens.mint(job.id, 1);
    const get = { id: job.id };
    expect(await call('JobService.Get', get, good)).toBe(status.OK);
    expect(await call('JobService.Get', get, good.slice(0, -4) + 'AAAA')).toBe(status.UNAUTHENTICATED);
    expect(await call('JobService.Get', get, api.jobTokens.mint(job.id, 2))).toBe(status.UNAUTHENTICATED);
    const done = { exitCode: 0, failure: 0, message: '', logRecords: 0, startedAt: undefined, finishedAt: undefined, usage: undefined };
    await api.writer.write(job.id, (r) => finish(r, 1, done, new Date()));
    expect(await call('JobService.Get', get, good)).toBe(status.UNAUTHENTICATED);
  });

  it('cannot be made as API tokens', async () => {
    await expect(tokens.create({ name: 'j', role: 'job', tenants: ['a'], ttlMs: 0 })).rejects.toThrow(/job tokens are minted per attempt/);
    const create = { name: 'j', role: 'job', tenants: ['a'], ttlSeconds: 60 };
    expect(await call('TokenService.CreateToken', create, token.admin)).toBe(status.INVALID_ARGUMENT);
  });
});

describe('schedules and templates of another tenant', () => {
  const call = (name: string, request: unknown, bearer: string | undefined): Promise<status> =>
    codeOf(
      methods.find((m) => m.name === name)!,
      request,
      bearer,
    );

  it('are NOT_FOUND to read, change, trigger or submit, and are left as they were', async () => {
    const spec = ScheduleSpec.fromPartial({
      name: 'nightly-b',
      tenant: 'b',
      cron: '0 3 * * *',
      job: JobSpec.fromPartial({ argv: ['true'] }),
    });
    expect(await call('ScheduleService.CreateSchedule', { spec }, token.admin)).toBe(status.OK);
    const text = 'params: {sha: {required: true}}\ncommand: [echo, "${{ params.sha }}"]\n';
    expect(await call('TemplateService.CreateTemplate', { name: 'build-b', tenant: 'b', text, replace: false }, token.admin)).toBe(
      status.OK,
    );
    const schedule = { name: 'nightly-b', tenant: 'b' };
    for (const m of ['GetSchedule', 'PauseSchedule', 'ResumeSchedule', 'TriggerSchedule', 'DeleteSchedule'])
      expect({ m, code: await call(`ScheduleService.${m}`, schedule, token.submitter) }).toEqual({ m, code: status.NOT_FOUND });
    const template = { name: 'build-b', tenant: 'b', params: { sha: 'x' } };
    for (const m of ['GetTemplate', 'SubmitTemplate', 'DeleteTemplate'])
      expect({ m, code: await call(`TemplateService.${m}`, template, token.submitter) }).toEqual({ m, code: status.NOT_FOUND });
    // Its own tenant's name is another schedule: not there either.
    expect(await call('ScheduleService.GetSchedule', { name: 'nightly-b', tenant: '' }, token.submitter)).toBe(status.NOT_FOUND);
    // The admin still sees both.
    expect(await call('ScheduleService.GetSchedule', schedule, token.admin)).toBe(status.OK);
    expect(await call('TemplateService.GetTemplate', template, token.admin)).toBe(status.OK);
    expect([...tracker.values()].filter((v) => v.record.job.schedule === 'nightly-b')).toEqual([]);
  });
});

describe('tokens', () => {
  it('stops working once revoked, and once expired', async () => {
    const status_ = methods.find((m) => m.name === 'ClusterService.Status')!;
    const made = await tokens.create({ name: 'short', role: 'viewer', tenants: ['a'], ttlMs: 0 });
    expect(await codeOf(status_, {}, made.token)).toBe(status.OK);
    expect(await tokens.revoke(made.record.id)).toBe(true);
    await waitUntil(async () => (await codeOf(status_, {}, made.token)) === status.UNAUTHENTICATED, {
      what: 'the revoked token refused',
      timeoutMs: 1_000,
    });
    const brief = await tokens.create({ name: 'brief', role: 'viewer', tenants: ['a'], ttlMs: 1 });
    await waitUntil(async () => (await codeOf(status_, {}, brief.token)) === status.UNAUTHENTICATED, {
      what: 'the expired token refused',
      timeoutMs: 2_000,
    });
  });

  it('is stored only as a hash, and ListTokens never returns a secret', async () => {
    const made = await tokens.create({ name: 'secret-check', role: 'viewer', tenants: ['a'], ttlMs: 0 });
    const secret = made.token.split('_').slice(2).join('_');
    const stored = await store.range('/runmesh/tokens/');
    expect(JSON.stringify(stored.kvs)).not.toContain(secret);
    expect(made.token).toMatch(/^rmt_[0-9a-f]{16}_/);
  });
});

describe('limits', () => {
  let limited: Server;
  let limitedClient: Client;
  const statusMethod = (): Method => methods.find((m) => m.name === 'ClusterService.Status')!;
  const callStatus = (bearer: string | undefined): Promise<status> =>
    new Promise((resolve) =>
      limitedClient.makeUnaryRequest(
        statusMethod().path,
        statusMethod().requestSerialize as (v: unknown) => Buffer,
        statusMethod().responseDeserialize,
        {},
        metadata(bearer),
        (err: ServiceError | null) => resolve(err ? err.code : status.OK),
      ),
    );

  beforeAll(async () => {
    // Small limits on a server of their own: 5 calls a second per token, 3 failed authentications per address.
    const gate = new Gate({
      tokens,
      log,
      limits: { perToken: { perSecond: 5, burst: 5 }, perTenant: { perSecond: 5, burst: 5 }, authFailures: { perSecond: 2, burst: 3 } },
    });
    limited = new Server();
    new ClusterServiceImpl({ gate, view: new NoAgents(), tracker, logger: log, version: 'test' }).addToServer(limited);
    const port = await new Promise<status>((resolve, reject) =>
      limited.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    limitedClient = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
  });
  afterAll(() => {
    limitedClient?.close();
    limited?.forceShutdown();
  });

  it('holds a token to its rate under a bounded flood (RESOURCE_EXHAUSTED), and lets it through again afterwards', async () => {
    const codes = await Promise.all(Array.from({ length: 20 }, () => callStatus(token.viewer)));
    expect(codes.filter((c) => c === status.OK).length).toBeLessThanOrEqual(6);
    expect(codes.filter((c) => c === status.RESOURCE_EXHAUSTED).length).toBeGreaterThanOrEqual(14);
    await waitUntil(async () => (await callStatus(token.viewer)) === status.OK, { what: 'the token let through again', timeoutMs: 2_000 });
  });

  it('slows an address down after repeated failed authentications, even for a good token, then recovers', async () => {
    const bad = 'rmt_0123456789abcdef_' + 'y'.repeat(43);
    for (let i = 0; i < 3; i++) expect(await callStatus(bad)).toBe(status.UNAUTHENTICATED);
    expect(await callStatus(bad)).toBe(status.RESOURCE_EXHAUSTED);
    expect(await callStatus(token.admin)).toBe(status.RESOURCE_EXHAUSTED);
    await waitUntil(async () => (await callStatus(token.admin)) === status.OK, { what: 'the address let through again', timeoutMs: 3_000 });
  });
});
