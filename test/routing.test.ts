/**
 * Routing through real agents: a critical job preempts a running batch job,
 * which is re-queued without using up a retry and completes; a job no agent
 * could ever run waits with a reason that operators can see.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FailureCategory, JobState, QosClass } from '../proto/gen/runmesh/v1/job.js';
import { adminToken, bigintSafe, TestClient } from './support/client.js';
import { startAgent, startServer, stopAll, type ServerProc } from './support/processes.js';

describe('routing end to end', () => {
  let server: ServerProc;
  let client: TestClient;

  beforeAll(async () => {
    server = await startServer();
    await startAgent(server.address, { name: 'solo', slots: 1, labels: 'os=linux,pool=ci' });
    client = new TestClient(server.address, adminToken(server.dataDir));
    await client.waitAgents(1);
  });

  afterAll(async () => {
    client?.close();
    await stopAll();
  });

  it('preempts a batch sleep for a critical job; the batch job is re-queued and completes', async () => {
    const batch = await client.submit({
      script: 'echo batch run $RUNMESH_ATTEMPT; sleep 2',
      qos: QosClass.QOS_CLASS_BATCH,
      maxAttempts: 1,
      cancelGraceSeconds: 1,
    });
    await client.waitFor(batch.id, (j) => j.state === JobState.JOB_STATE_RUNNING);
    const critical = await client.submit({ argv: ['echo', 'urgent'], qos: QosClass.QOS_CLASS_CRITICAL });
    const c = await client.waitDone(critical.id, 20_000);
    expect(c.state, JSON.stringify(c.attempts, bigintSafe)).toBe(JobState.JOB_STATE_SUCCEEDED);
    const b = await client.waitDone(batch.id, 30_000);
    expect(b.state, JSON.stringify([b.attempts, b.timeline], bigintSafe)).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect(b.attempts.map((a) => a.failure)).toEqual([
      FailureCategory.FAILURE_CATEGORY_PREEMPTED,
      FailureCategory.FAILURE_CATEGORY_UNSPECIFIED,
    ]);
    expect(Date.parse(c.attempts[0]!.finishedAt!)).toBeLessThan(Date.parse(b.attempts[1]!.startedAt!));
  });

  it('keeps a job no agent could run queued, with the reason in jobs get and cluster status', async () => {
    const job = await client.submit({ argv: ['true'], selector: 'gpu,os=linux' });
    const waiting = await client.waitFor(job.id, (j) => j.waitingReason.startsWith('unschedulable'));
    expect(waiting.state).toBe(JobState.JOB_STATE_QUEUED);
    expect(waiting.waitingReason).toContain('gpu');
    const status = await client.status();
    expect(status.unschedulable.map((u) => u.jobId)).toContain(job.id);
    await client.cancel(job.id);
  });

  it('places by selector and refuses a malformed one naming the position', async () => {
    const ok = await client.submit({ argv: ['true'], selector: 'os in (linux,darwin),pool!=slow,!spot' });
    expect((await client.waitDone(ok.id)).state).toBe(JobState.JOB_STATE_SUCCEEDED);
    await expect(client.submit({ argv: ['true'], selector: 'os in (linux' })).rejects.toMatchObject({
      details: expect.stringMatching(/spec\.selector: .*position \d+/) as unknown,
    });
  });
});
