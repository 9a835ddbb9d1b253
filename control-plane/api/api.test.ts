/**
 * JobService and ClusterService by themselves: each on a real gRPC server on
 * port 0 over the real job repo, tracker and writer on an embedded store, no
 * mesh or scheduler (new jobs are stored queued, as on a peer that does not
 * lead). The cluster view is a small implementation of its own interface.
 * What the whole control plane adds is test/api.test.ts's.
 */
import { credentials, status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentState, ClusterServiceClient, type Agent, type Peer } from '../../proto/gen/runmesh/v1/cluster.js';
import { Executor, JobServiceClient, JobSpec, JobState, ListRequest, type Job, type QosClass } from '../../proto/gen/runmesh/v1/job.js';
import { bearer } from '../../test/support/client.js';
import { newJobId } from '../jobs/ids.js';
import type { JobRepo } from '../jobs/repo.js';
import type { ClusterView } from './cluster-service.js';
import { startApi, type ApiHarness } from './testing/harness.js';

const DAY_MS = 86_400_000;

/** One agent, cordoned or not, and what the service asked of the view. */
class OneAgentView implements ClusterView {
  cordoned = false;
  readonly drained: string[] = [];

  agents(): Agent[] {
    const capacity = { slots: 2, cpuMillis: 0, memoryMb: 0 };
    const state = this.cordoned ? AgentState.AGENT_STATE_CORDONED : AgentState.AGENT_STATE_READY;
    return [
      {
        name: 'runner-1',
        state,
        labels: {},
        capacity,
        free: capacity,
        running: 0,
        version: 't',
        peer: 'p',
        hostname: 'h',
        load: 0,
        unhealthy: '',
        containment: 'cgroup v2 /sys/fs/cgroup/runmesh (cpu memory pids)',
        executors: [],
        connectedAt: undefined,
        lastHeartbeat: undefined,
      },
    ];
  }
  peers(): Peer[] {
    return [{ id: 'p', address: '127.0.0.1:1', leader: true, agents: 1 }];
  }
  leader(): string {
    return 'p';
  }
  unschedulable(): Array<{ jobId: string; reason: string }> {
    return [];
  }
  async drain(name: string): Promise<boolean> {
    this.drained.push(name);
    return true;
  }
  async setCordoned(_name: string, cordoned: boolean): Promise<void> {
    this.cordoned = cordoned;
  }
  async revokeAgent(name: string): Promise<boolean> {
    return name === 'runner-1';
  }
  async rotateAgent(name: string): Promise<{ requested: boolean; rotated: boolean }> {
    return { requested: name === 'runner-1', rotated: false };
  }
}

let api: ApiHarness;
let repo: JobRepo;
let jobs: JobServiceClient;
let cluster: ClusterServiceClient;
const view = new OneAgentView();
const toldAgents: string[] = [];

beforeAll(async () => {
  api = await startApi({
    view,
    version: '9.9.9',
    retention: { ageMs: 7 * DAY_MS, maxEnded: 0 },
    cancelOnAgent: async (agent, id) => {
      toldAgents.push(`${agent} ${id}`);
      return true;
    },
  });
  repo = api.repo;
  const admin = await api.tokens.create({ name: 'test-admin', role: 'admin', tenants: [], ttlMs: 0 });
  const interceptors = [bearer(admin.token)];
  jobs = new JobServiceClient(api.address, credentials.createInsecure(), { interceptors });
  cluster = new ClusterServiceClient(api.address, credentials.createInsecure(), { interceptors });
});

afterAll(async () => {
  jobs?.close();
  cluster?.close();
  await api?.close();
});

type Callback<T> = (err: ServiceError | null, res: T) => void;
const call = <T>(fn: (cb: Callback<T>) => unknown): Promise<T> =>
  new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res))));
const refusal = (p: Promise<unknown>): Promise<ServiceError> =>
  p.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (err: ServiceError) => err,
  );

const spec = (partial: Partial<JobSpec>): JobSpec => JobSpec.fromPartial({ argv: ['true'], ...partial });
const submit = (partial: Partial<JobSpec>) => call<{ job?: Job; existing: boolean }>((cb) => jobs.submit({ spec: spec(partial) }, cb));
const submitBatch = (specs: JobSpec[]) => call<{ jobs: Job[] }>((cb) => jobs.submitBatch({ specs }, cb));
const get = (id: string) => call<{ job?: Job }>((cb) => jobs.get({ id }, cb));
const list = (req: Partial<ListRequest>) =>
  call<{ jobs: Job[]; nextPageToken: string }>((cb) => jobs.list(ListRequest.fromPartial(req), cb));
const cancel = (id: string, reason = 'test') => call<{ job?: Job }>((cb) => jobs.cancel({ id, reason }, cb));

describe('JobService.Submit', () => {
  const cases: Array<[string, Partial<JobSpec>, string]> = [
    ['an empty program name', { argv: [''] }, 'spec.argv[0]: program name is empty'],
    ['a bad tenant name', { tenant: 'no spaces' }, 'spec.tenant: bad tenant name'],
    ['a priority out of range', { priority: 5000 }, 'spec.priority: must be within ±1000'],
    ['too many slots', { resources: { slots: 5000, cpuMillis: 0, memoryMb: 0 } }, 'spec.resources.slots: 5000 exceeds the limit of 1024'],
    ['an unknown QoS class', { qos: 42 as QosClass }, 'spec.qos: unknown class 42'],
    ['a name too long', { name: 'n'.repeat(300) }, 'spec.name: longer than 256 characters'],
    ['an idempotency key too long', { idempotencyKey: 'k'.repeat(300) }, 'spec.idempotency_key: longer than 256 characters'],
    ['a cancel grace too long', { cancelGraceSeconds: 999_999 }, 'spec.cancel_grace_seconds: 999999s exceeds the limit of 3600s'],
    ['a NUL byte in an argument', { argv: ['echo', 'a\0b'] }, 'spec.argv[1]: contains a NUL byte, which no process can be given'],
    ['a NUL byte in the script', { argv: [], script: 'echo a\0b' }, 'spec.script: contains a NUL byte'],
    ['a NUL byte in an env value', { argv: ['true'], env: { TOKEN: 'x\0y' } }, 'spec.env.TOKEN: contains a NUL byte'],
    [
      'no_network with the shell executor',
      { noNetwork: true, executor: Executor.EXECUTOR_SHELL },
      'spec.no_network: only the sandbox executor',
    ],
    ['no_network with no executor (shell)', { noNetwork: true }, 'spec.no_network: only the sandbox executor'],
    ['an unknown executor', { executor: 7 as Executor }, 'spec.executor: unknown executor 7'],
    [
      'one argument over Linux’s MAX_ARG_STRLEN',
      { argv: ['echo', 'a'.repeat(128 * 1024)] },
      'spec.argv[1]: too large (131072 bytes, Linux takes one argument of at most 131071)',
    ],
    ['argv over 128 KiB in all', { argv: ['echo', ...Array.from({ length: 3 }, () => 'a'.repeat(50_000))] }, 'spec.argv: too large'],
    [
      'argv and env that fit apart but not in one execve',
      { argv: ['echo', ...Array.from({ length: 30_000 }, () => 'x')] },
      'spec.argv: argv and env together too large to start',
    ],
    ['an env name with "="', { env: { 'A=B': '1' } }, 'spec.env: bad variable name "A=B"'],
    ['a script over 1 MiB', { argv: [], script: 'x'.repeat(1024 * 1024 + 1) }, 'spec.script: too large (1048577 bytes, limit 1048576)'],
  ];
  for (const [what, partial, detail] of cases) {
    it(`refuses ${what} with INVALID_ARGUMENT naming the field, and stores nothing`, async () => {
      const before = await repo.count();
      const err = await refusal(submit(partial));
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.details).toContain(detail);
      expect(await repo.count()).toBe(before);
    });
  }

  it('accepts a 1 MB script, and a sandbox job without network', async () => {
    const script = `: ${'x'.repeat(1_000_000 - 3)}\n`;
    const { job } = await submit({ argv: [], script });
    expect((await repo.mustGet(job!.id)).record.job.spec.script).toHaveLength(1_000_000);
    const { job: sandboxed } = await submit({ executor: Executor.EXECUTOR_SANDBOX, noNetwork: true });
    expect((await repo.mustGet(sandboxed!.id)).record.job.spec).toMatchObject({ executor: Executor.EXECUTOR_SANDBOX, noNetwork: true });
  });

  it('stores the job with every default resolved', async () => {
    const { job, existing } = await submit({ name: 'defaults' });
    expect(existing).toBe(false);
    expect((await repo.mustGet(job!.id)).record.job.spec).toMatchObject({
      timeoutSeconds: 3600,
      maxAttempts: 1,
      cancelGraceSeconds: 10,
      resources: { slots: 1 },
      tenant: 'default',
      executor: Executor.EXECUTOR_SHELL,
      noNetwork: false,
    });
  });

  it('answers a repeated idempotency key with the first job, storing one', async () => {
    const before = await repo.count();
    const first = await submit({ name: 'once', idempotencyKey: 'deploy-42' });
    const again = await submit({ name: 'twice', idempotencyKey: 'deploy-42' });
    const other = await submit({ name: 'other', idempotencyKey: 'deploy-43' });
    expect(first.existing).toBe(false);
    expect(again).toMatchObject({ existing: true, job: { id: first.job!.id } });
    expect(again.job!.spec?.name).toBe('once');
    expect(other.existing).toBe(false);
    expect(other.job!.id).not.toBe(first.job!.id);
    expect(await repo.count()).toBe(before + 2);
  });
});

describe('JobService.Get', () => {
  it('answers NOT_FOUND for an unknown id, saying when the job may have been deleted by retention', async () => {
    const fresh = await refusal(get(newJobId()));
    expect(fresh.code).toBe(status.NOT_FOUND);
    expect(fresh.details).not.toContain('deleted');
    const old = await refusal(get(newJobId(Date.now() - 30 * DAY_MS)));
    expect(old.code).toBe(status.NOT_FOUND);
    expect(old.details).toContain('jobs are deleted 7d after they end; it may have been');
  });
});

describe('JobService.List', () => {
  it('pages through jobs newest first (or oldest first), with filters, and refuses a page over the limit', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await submit({ name: `paged-${i}` })).job!.id);
    const pagesOf = async (req: Partial<ListRequest>): Promise<{ sizes: number[]; seen: string[] }> => {
      const seen: string[] = [];
      const sizes: number[] = [];
      let token = '';
      do {
        const page = await list({ namePrefix: 'paged-', pageSize: 2, pageToken: token, ...req });
        sizes.push(page.jobs.length);
        seen.push(...page.jobs.map((j) => j.id));
        token = page.nextPageToken;
      } while (token && sizes.length < 10);
      return { sizes, seen };
    };
    expect(await pagesOf({})).toEqual({ sizes: [2, 2, 1], seen: [...ids].reverse() });
    expect(await pagesOf({ oldestFirst: true })).toEqual({ sizes: [2, 2, 1], seen: ids });
    // A page token names a place in the list, so it continues either way from that job.
    expect((await list({ namePrefix: 'paged-', pageToken: ids[2]! })).jobs.map((j) => j.id)).toEqual([ids[1], ids[0]]);
    expect((await list({ namePrefix: 'paged-', pageToken: ids[2]!, oldestFirst: true })).jobs.map((j) => j.id)).toEqual([ids[3], ids[4]]);

    await cancel(ids[1]!);
    const cancelled = await list({ namePrefix: 'paged-', states: [JobState.JOB_STATE_CANCELLED] });
    expect(cancelled.jobs.map((j) => j.id)).toEqual([ids[1]]);

    const err = await refusal(list({ pageSize: 1001 }));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toContain('page_size');
  });

  it('filters by the labels a job requires and by submission time', async () => {
    const linux = (await submit({ name: 'lab-linux', selector: 'os=linux,gpu' })).job!;
    const either = (await submit({ name: 'lab-either', selector: 'os in (linux,darwin)' })).job!;
    await submit({ name: 'lab-none' });
    const names = async (req: Partial<ListRequest>): Promise<string[]> =>
      (await list({ namePrefix: 'lab-', ...req })).jobs.map((j) => j.spec!.name);
    expect(await names({ labels: 'os=linux' })).toEqual(['lab-either', 'lab-linux']);
    expect(await names({ labels: 'gpu' })).toEqual(['lab-linux']);
    expect(await names({ labels: 'os=darwin,gpu' })).toEqual([]);
    expect(await names({ createdAfter: either.createdAt, oldestFirst: true })).toEqual(['lab-either', 'lab-none']);
    expect(await names({ createdBefore: either.createdAt })).toEqual(linux.createdAt === either.createdAt ? [] : ['lab-linux']);
    const bad = await refusal(list({ labels: 'os!=linux' }));
    expect([bad.code, bad.details]).toEqual([status.INVALID_ARGUMENT, 'labels: only key=value and key terms filter jobs, not != (os)']);
    expect((await refusal(list({ labels: 'os=' }))).details).toMatch(/^labels: /);
  });
});

describe('JobService.Cancel', () => {
  it('ends a queued job at once without telling any agent, and a second cancel writes nothing', async () => {
    const { job } = await submit({ name: 'to-cancel' });
    const { job: cancelled } = await cancel(job!.id, 'no longer needed');
    expect(cancelled!.state).toBe(JobState.JOB_STATE_CANCELLED);
    const stored = await repo.mustGet(job!.id);
    expect(stored.record.job.state).toBe(JobState.JOB_STATE_CANCELLED);
    expect(stored.record.job.timeline.at(-1)).toMatchObject({ state: JobState.JOB_STATE_CANCELLED, reason: 'no longer needed' });
    expect(toldAgents).toEqual([]);

    expect((await cancel(job!.id)).job!.state).toBe(JobState.JOB_STATE_CANCELLED);
    expect((await repo.mustGet(job!.id)).modRevision).toBe(stored.modRevision);
  });
});

describe('JobService.SubmitBatch', () => {
  it('refuses an empty batch, one over 10,000 jobs, and idempotency keys, storing nothing', async () => {
    const before = await repo.count();
    const empty = await refusal(submitBatch([]));
    expect([empty.code, empty.details]).toEqual([status.INVALID_ARGUMENT, 'specs: empty batch']);
    const huge = await refusal(submitBatch(Array.from({ length: 10_001 }, () => spec({}))));
    expect([huge.code, huge.details]).toEqual([status.INVALID_ARGUMENT, 'specs: 10001 jobs exceed the batch limit of 10000']);
    const keyed = await refusal(submitBatch([spec({}), spec({ idempotencyKey: 'k' })]));
    expect(keyed.code).toBe(status.INVALID_ARGUMENT);
    expect(keyed.details).toContain('specs[1].idempotency_key');
    expect(await repo.count()).toBe(before);
  });

  it('stores a batch at the limit, in order', async () => {
    const specs = Array.from({ length: 10_000 }, (_, i) => spec({ name: `batch-${i}` }));
    const { jobs: stored } = await submitBatch(specs);
    expect(stored.map((j) => j.spec?.name)).toEqual(specs.map((s) => s.name));
    expect(new Set(stored.map((j) => j.state))).toEqual(new Set([JobState.JOB_STATE_QUEUED]));
    const page = await list({ namePrefix: 'batch-', pageSize: 1000, oldestFirst: true });
    expect(page.jobs.map((j) => j.id)).toEqual(stored.slice(0, 1000).map((j) => j.id));
  });
});

describe('ClusterService', () => {
  it('counts the live jobs it is given by state and QoS class, and names the leader and the version', async () => {
    const res = await call<{
      jobsByState: Record<string, number>;
      leader: string;
      version: string;
      queues: Array<{ qos: number; queued: number }>;
    }>((cb) => cluster.status({}, cb));
    expect(res.leader).toBe('p');
    expect(res.version).toBe('9.9.9');
    expect(res.jobsByState.queued).toBe(api.tracker.countsByState().get(JobState.JOB_STATE_QUEUED));
    expect(res.jobsByState.cancelled).toBeUndefined(); // ended jobs are not live
  });

  it('answers an unknown agent with NOT_FOUND, a missing name with INVALID_ARGUMENT, and cordons through the view', async () => {
    const unknown = await refusal(call((cb) => cluster.getAgent({ name: 'nobody' }, cb)));
    expect([unknown.code, unknown.details]).toEqual([status.NOT_FOUND, 'agent nobody not found']);
    const missing = await refusal(call((cb) => cluster.cordon({ name: '' }, cb)));
    expect([missing.code, missing.details]).toEqual([status.INVALID_ARGUMENT, 'name: missing']);
    const cordoned = await call<{ agent?: Agent }>((cb) => cluster.cordon({ name: 'runner-1' }, cb));
    expect(cordoned.agent?.state).toBe(AgentState.AGENT_STATE_CORDONED);
    expect(view.cordoned).toBe(true);
    const drained = await call<{ agent?: Agent }>((cb) => cluster.drain({ name: 'runner-1' }, cb));
    expect(drained.agent?.name).toBe('runner-1');
    expect(view.drained).toEqual(['runner-1']);
  });
});
