/**
 * The API's edges against a real in-process control plane on port 0: bad
 * input gets a status naming the field and stores nothing; bad agents and
 * clients that hang up never crash the server; health and reflection work.
 */
import { credentials, Metadata, status, type ServiceError, Client, type ClientDuplexStream } from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentServiceClient, type ConnectResponse } from '../proto/gen/runmesh/v1/agent.js';
import { JobState, QosClass } from '../proto/gen/runmesh/v1/job.js';
import { PROTOCOL_VERSION } from '../proto/protocol.js';
import { ControlPlane } from '../control-plane/server.js';
import { adminToken, TestClient } from './support/client.js';
import { tempDir } from './support/processes.js';
import { sleep, waitUntil } from './support/wait.js';

const TOKEN = 'api-test-token';
let cp: ControlPlane;
let client: TestClient;

beforeAll(async () => {
  cp = await ControlPlane.start({
    listen: ['127.0.0.1:0'],
    httpListen: '127.0.0.1:0',
    dataDir: await tempDir('runmesh-api-'),
    joinToken: TOKEN,
    logger: pino({ level: 'silent' }),
  });
  client = new TestClient(cp.address, adminToken(cp.options.dataDir));
});

afterAll(async () => {
  client?.close();
  await cp?.close();
});

async function rejects(p: Promise<unknown>): Promise<ServiceError> {
  try {
    await p;
  } catch (err) {
    return err as ServiceError;
  }
  throw new Error('expected the call to fail');
}

describe('bad input', () => {
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['missing command', {}, 'spec.argv: missing command'],
    ['both argv and script', { argv: ['true'], script: 'true' }, 'spec.script'],
    ['absurd timeout', { argv: ['true'], timeoutSeconds: 99_999_999 }, 'spec.timeout_seconds'],
    ['oversized env', { argv: ['true'], env: { BIG: 'x'.repeat(70_000) } }, 'spec.env: too large'],
    ['bad env name', { argv: ['true'], env: { 'A-B': '1' } }, 'spec.env: bad variable name'],
    ['malformed selector', { argv: ['true'], selector: 'os=,=x' }, 'spec.selector'],
    ['too many attempts', { argv: ['true'], maxAttempts: 1000 }, 'spec.max_attempts'],
  ];
  for (const [name, spec, field] of cases) {
    it(`refuses ${name} with INVALID_ARGUMENT naming the field, storing nothing`, async () => {
      const before = (await client.status()).jobsByState;
      const err = await rejects(client.submit(spec));
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.details).toContain(field);
      expect((await client.status()).jobsByState).toEqual(before);
    });
  }

  it('answers NOT_FOUND for an unknown or malformed job id', async () => {
    expect((await rejects(client.get('j_0000000000000000000000'))).code).toBe(status.NOT_FOUND);
    expect((await rejects(client.get('../../etc/passwd'))).code).toBe(status.NOT_FOUND);
    expect((await rejects(client.cancel('j_zzzzzzzzzzzzzzzzzz'))).code).toBe(status.NOT_FOUND);
    expect((await rejects(client.get(''))).code).toBe(status.INVALID_ARGUMENT);
  });

  it('names the index of a bad spec in a batch', async () => {
    const err = await rejects(
      new Promise((resolve, reject) =>
        client.jobs.submitBatch({ specs: [client.spec({ argv: ['true'] }), client.spec({})] }, (e, r) => (e ? reject(e) : resolve(r))),
      ),
    );
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toContain('specs[1].argv');
  });
});

describe('status', () => {
  it('counts live jobs by state and queued ones by QoS class as they change (no agent: they wait)', async () => {
    const depth = (s: Awaited<ReturnType<TestClient['status']>>, qos: QosClass): number => s.queues.find((q) => q.qos === qos)?.queued ?? 0;
    const before = await client.status();
    const critical = await Promise.all([0, 1].map(() => client.submit({ argv: ['true'], qos: QosClass.QOS_CLASS_CRITICAL })));
    const batch = await Promise.all([0, 1, 2].map(() => client.submit({ argv: ['true'], qos: QosClass.QOS_CLASS_BATCH })));
    await client.cancel(batch[0]!.id);
    await client.waitDone(batch[0]!.id, 10_000);
    const after = await client.status();
    expect((after.jobsByState.queued ?? 0) - (before.jobsByState.queued ?? 0)).toBe(4);
    expect(depth(after, QosClass.QOS_CLASS_CRITICAL) - depth(before, QosClass.QOS_CLASS_CRITICAL)).toBe(2);
    expect(depth(after, QosClass.QOS_CLASS_BATCH) - depth(before, QosClass.QOS_CLASS_BATCH)).toBe(2);
    expect(depth(after, QosClass.QOS_CLASS_STANDARD)).toBe(depth(before, QosClass.QOS_CLASS_STANDARD));
    // Terminal jobs are not live: a cancelled job leaves the counts.
    expect(after.jobsByState.cancelled).toBeUndefined();
    for (const j of [...critical, ...batch.slice(1)]) await client.cancel(j.id);
    await Promise.all([...critical, ...batch].map((j) => client.waitDone(j.id, 10_000)));
    const end = await client.status();
    expect(end.jobsByState).toEqual(before.jobsByState);
    expect(end.queues).toEqual(before.queues);
  });
});

describe('streams', () => {
  it('watches job events', async () => {
    const events: Array<{ id: string; state: JobState }> = [];
    const watch = client.jobs.watch({ ids: [] });
    watch.on('data', (e: { job?: { id: string; state: JobState } }) => events.push({ id: e.job!.id, state: e.job!.state }));
    watch.on('error', () => undefined);
    const states = (id: string): JobState[] => events.filter((e) => e.id === id).map((e) => e.state);
    try {
      // Nothing tells when the server has subscribed the watch: it has once it carries a probe job's events.
      await waitUntil(
        async () => {
          const probe = await client.submit({ argv: ['true'], name: 'probe' });
          await client.cancel(probe.id);
          return states(probe.id).length > 0;
        },
        { what: 'the watch to carry a probe job', timeoutMs: 5_000, intervalMs: 100 },
      );
      const job = await client.submit({ argv: ['true'] });
      await client.cancel(job.id);
      await waitUntil(() => states(job.id).includes(JobState.JOB_STATE_CANCELLED), { what: 'the cancel on the watch', timeoutMs: 5_000 });
      expect(states(job.id)).toContain(JobState.JOB_STATE_QUEUED);
      expect(states(job.id)).toContain(JobState.JOB_STATE_CANCELLED);
    } finally {
      watch.cancel();
    }
  });

  it('survives a client that hangs up mid-follow', async () => {
    const job = await client.submit({ argv: ['true'] });
    const logs = client.jobs.logs({ id: job.id, follow: true, attempt: 0, fromSeq: 0 });
    logs.on('error', () => undefined);
    // A moment for the server to start following before the client hangs up; nothing shows when it has.
    await sleep(100);
    logs.cancel();
    await client.cancel(job.id);
    expect((await client.get(job.id)).state).toBe(JobState.JOB_STATE_CANCELLED);
  });
});

describe('agents that misbehave', () => {
  function connect() {
    const agents = new AgentServiceClient(cp.address, credentials.createInsecure());
    const stream = agents.connect();
    const ended = new Promise<{ code: number; details: string }>((resolve) => {
      stream.on('error', (e: ServiceError) => resolve({ code: e.code, details: e.details }));
      stream.on('end', () => resolve({ code: 0, details: 'end' }));
    });
    stream.on('data', () => undefined);
    return { agents, stream, ended };
  }

  const hello = (joinToken: string, name = 'misfit') => ({
    msg: {
      $case: 'hello' as const,
      value: {
        name,
        joinToken,
        labels: {},
        capacity: { slots: 1, cpuMillis: 0, memoryMb: 0 },
        version: 'test',
        protocolVersion: PROTOCOL_VERSION,
        containment: '',
        held: [],
        hostname: 'h',
        credential: '',
      },
    },
  });

  it('refuses a wrong join token with UNAUTHENTICATED', async () => {
    const { stream, ended, agents } = connect();
    stream.write(hello('wrong'));
    expect((await ended).code).toBe(status.UNAUTHENTICATED);
    agents.close();
  });

  it('closes a stream whose first message is not Hello', async () => {
    const { stream, ended, agents } = connect();
    stream.write({ msg: { $case: 'heartbeat', value: { draining: false, load: 0, unhealthy: '' } } });
    expect((await ended).code).toBe(status.FAILED_PRECONDITION);
    agents.close();
  });

  it('survives garbage bytes on the agent stream', async () => {
    const raw = new Client(cp.address, credentials.createInsecure());
    const stream = raw.makeBidiStreamRequest(
      '/runmesh.v1.AgentService/Connect',
      (b: Buffer) => b,
      (b: Buffer) => b,
      new Metadata(),
    );
    const ended = new Promise<number>((resolve) => stream.on('error', (e: ServiceError) => resolve(e.code)));
    stream.on('data', () => undefined);
    stream.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02]));
    expect(await ended).toBeGreaterThan(0);
    raw.close();
    expect((await client.status()).version).toBeTruthy();
  });

  it('welcomes a good agent and rejects a second Hello', async () => {
    const { stream, ended, agents } = connect();
    const welcome = new Promise<ConnectResponse>((resolve) => stream.once('data', resolve));
    stream.write(hello(TOKEN, 'good'));
    expect((await welcome).msg?.$case).toBe('welcome');
    stream.write(hello(TOKEN, 'good'));
    expect((await ended).code).toBe(status.FAILED_PRECONDITION);
    agents.close();
  });
});

describe('operator surface', () => {
  it('serves /healthz and /readyz', async () => {
    expect((await fetch(`http://${cp.httpAddress}/healthz`)).status).toBe(200);
    const ready = await fetch(`http://${cp.httpAddress}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.text()).toContain('ready');
  });

  it('lists our services through server reflection and reports SERVING health', async () => {
    const { ServerReflectionClient } = await reflectionClient();
    const services = await ServerReflectionClient(cp.address);
    expect(services).toEqual(
      expect.arrayContaining(['runmesh.v1.JobService', 'runmesh.v1.ClusterService', 'runmesh.v1.AgentService', 'grpc.health.v1.Health']),
    );
    const raw = new Client(cp.address, credentials.createInsecure());
    const id = (b: Buffer): Buffer => b;
    const res = await new Promise<Buffer>((resolve, reject) =>
      raw.makeUnaryRequest('/grpc.health.v1.Health/Check', id, id, Buffer.alloc(0), (e, r) => (e ? reject(e) : resolve(r!))),
    );
    raw.close();
    expect([...res]).toEqual([0x08, 0x01]); // status: SERVING
  });
});

/** A minimal reflection client (list services) over the descriptor the @grpc/reflection package ships. */
async function reflectionClient() {
  const { loadSync } = await import('@grpc/proto-loader');
  const grpc = await import('@grpc/grpc-js');
  const { createRequire } = await import('node:module');
  const require = createRequire(import.meta.url);
  const protoPath = require.resolve('@grpc/reflection/build/proto/grpc/reflection/v1alpha/reflection.proto');
  const def = grpc.loadPackageDefinition(loadSync(protoPath, { keepCase: true })) as unknown as {
    grpc: {
      reflection: {
        v1alpha: {
          ServerReflection: new (
            addr: string,
            creds: unknown,
          ) => Client & {
            ServerReflectionInfo(): ClientDuplexStream<unknown, { list_services_response?: { service: Array<{ name: string }> } }>;
          };
        };
      };
    };
  };
  return {
    ServerReflectionClient: (addr: string) =>
      new Promise<string[]>((resolve, reject) => {
        const c = new def.grpc.reflection.v1alpha.ServerReflection(addr, grpc.credentials.createInsecure());
        const s = c.ServerReflectionInfo();
        s.on('data', (r: { list_services_response?: { service: Array<{ name: string }> } }) => {
          resolve((r.list_services_response?.service ?? []).map((x: { name: string }) => x.name));
          s.end();
          c.close();
        });
        s.on('error', reject);
        s.write({ list_services: '' });
      }),
  };
}
