/**
 * The agent's session with a control plane: what its Hello says, that it
 * follows its Welcome, that a stream the control plane ends is taken up again
 * with the running attempt reported and resumed, and that an Assign it gets
 * twice runs once. A real Agent (real supervisors, real jobs) against a real
 * in-process ControlPlane on an embedded store, listening on a unix socket so
 * that a restarted one is found at the same address; only the duplicate
 * Assign, which a real control plane sends solely on a timer, comes from a
 * small AgentService on port 0 that sends it on purpose.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Server, ServerCredentials, type ServerDuplexStream } from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ControlPlane } from '../../control-plane/server.js';
import {
  AgentServiceService,
  type Assign,
  type ConnectRequest,
  type ConnectResponse,
  type JobResult,
} from '../../proto/gen/runmesh/v1/agent.js';
import { AgentState } from '../../proto/gen/runmesh/v1/cluster.js';
import { JobSpec, JobState } from '../../proto/gen/runmesh/v1/job.js';
import { VERSION } from '../../proto/version.js';
import { adminToken, TestClient } from '../../test/support/client.js';
import { tempDir } from '../../test/support/processes.js';
import { sleep, waitUntil } from '../../test/support/wait.js';
import { Agent } from '../agent.js';

const TOKEN = 'session-test-token';
const log = pino({ level: 'silent' });

const cleanups: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A control plane on `unix://<dir>/cp.sock` with its data in `<dir>/data`: a second one on the same dir takes over where the first left off. */
async function controlPlane(dir: string, o: { heartbeatIntervalMs?: number } = {}): Promise<{ cp: ControlPlane; client: TestClient }> {
  const cp = await ControlPlane.start({
    listen: [`unix://${join(dir, 'cp.sock')}`],
    httpListen: '127.0.0.1:0',
    dataDir: join(dir, 'data'),
    joinToken: TOKEN,
    webSocket: false,
    logger: log,
    ...o,
  });
  const client = new TestClient(cp.address, adminToken(cp.options.dataDir));
  cleanups.push(
    () => cp.close(),
    () => client.close(),
  );
  return { cp, client };
}

async function startAgent(server: string, o: Partial<ConstructorParameters<typeof Agent>[0]> = {}): Promise<Agent> {
  const agent = new Agent({
    servers: [server],
    joinToken: TOKEN,
    name: 'session-agent',
    workDir: await tempDir('runmesh-session-agent-'),
    standbySupervisor: false,
    logger: log,
    ...o,
  });
  cleanups.push(() => agent.close());
  await agent.start();
  return agent;
}

async function listed(client: TestClient, name: string) {
  return waitUntil(async () => (await client.agents()).agents.find((a) => a.name === name && a.state === AgentState.AGENT_STATE_READY), {
    what: `agent ${name} to be ready`,
    timeoutMs: 15_000,
  });
}

describe('agent session with a real control plane', () => {
  it('says who it is in its Hello: name, labels, capacity, version, host', async () => {
    const dir = await tempDir('runmesh-session-');
    const { cp, client } = await controlPlane(dir);
    await startAgent(cp.address, {
      name: 'hello-agent',
      labels: { os: 'linux', pool: 'ci' },
      capacity: { slots: 3, cpuMillis: 1500, memoryMb: 512 },
    });
    const seen = await listed(client, 'hello-agent');
    expect(seen).toMatchObject({
      labels: { os: 'linux', pool: 'ci' },
      capacity: { slots: 3, cpuMillis: 1500, memoryMb: 512 },
      version: VERSION,
      hostname: hostname(),
    });
  });

  it('heartbeats at the interval its Welcome asks for, not its own default of 2 s', async () => {
    const dir = await tempDir('runmesh-session-');
    const { cp, client } = await controlPlane(dir, { heartbeatIntervalMs: 100 });
    await startAgent(cp.address, { name: 'beating' });
    await listed(client, 'beating');
    const beats = new Set<string>();
    await waitUntil(
      async () => {
        const at = (await client.agents()).agents.find((a) => a.name === 'beating')?.lastHeartbeat;
        if (at) beats.add(at);
        return beats.size >= 5;
      },
      { what: 'five heartbeats', timeoutMs: 3_000, intervalMs: 50, show: () => [...beats] },
    );
  });

  it('takes up a stream the control plane ended: the running attempt is reported in Hello, resumed, and finishes once', async () => {
    const dir = await tempDir('runmesh-session-');
    const first = await controlPlane(dir);
    await startAgent(first.cp.address, { name: 'phoenix-cp' });
    await listed(first.client, 'phoenix-cp');
    const lines = 40;
    const job = await first.client.submit({
      script: `i=1; while [ $i -le ${lines} ]; do echo "line $i"; i=$((i+1)); sleep 0.05; done`,
      maxAttempts: 1,
    });
    await waitUntil(async () => (await first.client.logs(job.id)).stdout.includes('line 5\n'), {
      what: 'the job to stream',
      timeoutMs: 15_000,
    });
    await first.cp.close(); // ends the agent's stream; the job runs on
    first.client.close();

    const second = await controlPlane(dir);
    await listed(second.client, 'phoenix-cp');
    const done = await second.client.waitDone(job.id, 30_000);
    // Not reported in Hello, the attempt would have been failed as lost with the agent ("restarted without the attempt").
    expect(done.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect(done.attempts.map((a) => [a.number, a.agent])).toEqual([[1, 'phoenix-cp']]);
    expect((await second.client.logs(job.id)).stdout).toBe(Array.from({ length: lines }, (_, i) => `line ${i + 1}\n`).join(''));
  });
});

/** An AgentService that welcomes each stream and lets the test write to it. */
class WireControlPlane {
  readonly streams: Array<ServerDuplexStream<ConnectRequest, ConnectResponse>> = [];
  readonly results: JobResult[] = [];
  private readonly server = new Server();
  address = '';

  async start(): Promise<void> {
    this.server.addService(AgentServiceService, {
      connect: (call: ServerDuplexStream<ConnectRequest, ConnectResponse>) => {
        call.on('error', () => undefined);
        call.on('data', (m: ConnectRequest) => {
          if (m.msg?.$case === 'hello') {
            this.streams.push(call);
            const welcome = { sessionId: 's', heartbeatIntervalMs: 200, credential: '', resume: [], abandon: [] };
            call.write({ msg: { $case: 'welcome', value: welcome } });
          } else if (m.msg?.$case === 'jobResult') this.results.push(m.msg.value);
        });
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    this.address = `127.0.0.1:${port}`;
  }

  send(msg: ConnectResponse['msg']): void {
    this.streams.at(-1)?.write({ msg });
  }

  close(): void {
    this.server.forceShutdown();
  }
}

describe('agent session, Assign delivered twice', () => {
  it('runs an attempt once however often its Assign comes, before and after it finished', async () => {
    const cp = new WireControlPlane();
    await cp.start();
    cleanups.push(() => cp.close());
    const out = join(await tempDir('runmesh-session-twice-'), 'runs');
    await startAgent(cp.address, { name: 'twice' });
    await waitUntil(() => cp.streams.length === 1, { what: 'the Hello' });
    const assign: Assign = {
      jobId: 'j_0000000000000twice',
      attempt: 1,
      spec: JobSpec.fromPartial({ script: `echo ran >> ${out}`, cancelGraceSeconds: 10 }),
      deadline: new Date(Date.now() + 60_000).toISOString(),
      jobToken: '',
      secretEnv: {},
      secretFiles: [],
      traceParent: '',
      traceState: '',
    };
    cp.send({ $case: 'assign', value: assign });
    cp.send({ $case: 'assign', value: assign }); // re-sent while the first is starting
    const [result] = await waitUntil(() => cp.results.length > 0 && cp.results, { what: 'the result', timeoutMs: 20_000 });
    expect(result).toMatchObject({ jobId: assign.jobId, attempt: 1, exitCode: 0 });
    cp.send({ $case: 'resultAck', value: { jobId: assign.jobId, attempt: 1 } });
    cp.send({ $case: 'assign', value: assign }); // re-sent after it finished and was acknowledged
    await sleep(1_000); // deliberate: time to run it again, which it must not
    expect(readFileSync(out, 'utf8')).toBe('ran\n');
    expect(cp.results).toHaveLength(1);
  });
});
