/**
 * Dispatch against a real in-process control plane (embedded store) and
 * protocol-level agents over real gRPC: a job that fits is stored already
 * assigned at submit, new jobs never jump a queue, and an assignment its
 * agent never confirms is sent again (and completes once).
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { Assign } from '../proto/gen/runmesh/v1/agent.js';
import { JobState } from '../proto/gen/runmesh/v1/job.js';
import { ControlPlane } from '../control-plane/server.js';
import { adminToken, TestClient } from './support/client.js';
import { tempDir } from './support/processes.js';
import { simAgent, type SimAgent } from './support/sim-agent.js';
import { waitUntil } from './support/wait.js';

const TOKEN = 'dispatch-test-token';
const S = JobState;
let cleanup: Array<() => unknown> = [];

afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

async function start(): Promise<{ cp: ControlPlane; client: TestClient }> {
  const cp = await ControlPlane.start({
    listen: ['127.0.0.1:0'],
    httpListen: '127.0.0.1:0',
    dataDir: await tempDir('runmesh-dispatch-'),
    joinToken: TOKEN,
    logger: pino({ level: 'silent' }),
  });
  const client = new TestClient(cp.address, adminToken(cp.options.dataDir));
  cleanup.push(
    () => cp.close(),
    () => client.close(),
  );
  return { cp, client };
}

async function agent(
  cp: ControlPlane,
  client: TestClient,
  name: string,
  slots: number,
  complete?: (a: Assign) => boolean,
): Promise<SimAgent & { assigns: Assign[] }> {
  const assigns: Assign[] = [];
  const a = simAgent(cp.address, { name, token: TOKEN, slots, complete: (x) => (assigns.push(x), complete ? complete(x) : true) });
  cleanup.push(() => a.close());
  await a.welcomed;
  await client.waitAgents(1);
  return Object.assign(a, { assigns });
}

describe('dispatch', () => {
  it('stores a job that fits a free slot already assigned, in the same write as the submit', async () => {
    const { cp, client } = await start();
    const a = await agent(cp, client, 'fast', 2);
    const job = await client.submit({ argv: ['true'] });
    expect(job.state).toBe(S.JOB_STATE_ASSIGNED);
    expect(job.timeline.map((t) => t.state)).toEqual([S.JOB_STATE_QUEUED, S.JOB_STATE_ASSIGNED]);
    const done = await client.waitDone(job.id);
    expect(done.state).toBe(S.JOB_STATE_SUCCEEDED);
    expect(done.attempts).toHaveLength(1);
    expect(a.assigns.map((x) => x.jobId)).toEqual([job.id]);
  });

  it('queues a new job behind waiting ones instead of placing it first', async () => {
    const { cp, client } = await start();
    const first = await client.submit({ argv: ['true'], name: 'first' });
    const second = await client.submit({ argv: ['true'], name: 'second' });
    expect([first.state, second.state]).toEqual([S.JOB_STATE_QUEUED, S.JOB_STATE_QUEUED]);
    // The agent holds every job until told, so the queue is still there when the third arrives.
    const a = await agent(cp, client, 'one-slot', 1, () => false);
    await client.waitFor(first.id, (j) => j.state === S.JOB_STATE_ASSIGNED);
    const third = await client.submit({ argv: ['true'], name: 'third' });
    expect(third.state).toBe(S.JOB_STATE_QUEUED);
    for (const [i, j] of [first, second, third].entries()) {
      await client.waitFor(j.id, (x) => x.state === S.JOB_STATE_ASSIGNED);
      // The assignment is stored before it is sent: under load the Assign arrives a moment later.
      a.finish(await waitUntil(() => a.assigns[i], { what: `the Assign of job ${i + 1}` }));
      expect((await client.waitDone(j.id)).state).toBe(S.JOB_STATE_SUCCEEDED);
    }
    expect(a.assigns.map((x) => x.jobId)).toEqual([first.id, second.id, third.id]);
  });

  it('sends an assignment again when its agent gives no word of it, and the job completes once', async () => {
    const { cp, client } = await start();
    let dropped = 0;
    const a = await agent(cp, client, 'deaf', 1, () => dropped++ > 0);
    const job = await client.submit({ argv: ['true'] });
    const done = await client.waitDone(job.id, 15_000);
    expect(done.state).toBe(S.JOB_STATE_SUCCEEDED);
    expect(done.attempts).toHaveLength(1);
    expect(a.assigns.map((x) => `${x.jobId}/${x.attempt}`)).toEqual([`${job.id}/1`, `${job.id}/1`]);
  }, 20_000);
});
