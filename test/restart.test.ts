/**
 * Durability across process deaths: queued jobs survive a server restart, and
 * a job survives its agent being killed -9 and restarted three times, with
 * its log complete and in order and its result reported once.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { JobState } from '../proto/gen/runmesh/v1/job.js';
import { adminToken, TestClient } from './support/client.js';
import { jobPids } from './support/proc.js';
import { startAgent, startServer, stopAll, tempDir } from './support/processes.js';
import { waitUntil } from './support/wait.js';

afterAll(stopAll);

describe('restarts', () => {
  it('runs jobs that were queued before a server restart', async () => {
    const dataDir = await tempDir('runmesh-restart-');
    let server = await startServer({ dataDir });
    let client = new TestClient(server.address, adminToken(server.dataDir));
    const jobs = await Promise.all([1, 2, 3].map((i) => client.submit({ script: `echo queued ${i}` })));
    client.close();
    expect(await server.stop('SIGTERM')).toBe(0);
    server = await startServer({ dataDir });
    client = new TestClient(server.address, adminToken(server.dataDir));
    for (const j of jobs) expect((await client.get(j.id)).state).toBe(JobState.JOB_STATE_QUEUED);
    await startAgent(server.address, { name: 'late' });
    for (const [i, j] of jobs.entries()) {
      expect((await client.waitDone(j.id)).state).toBe(JobState.JOB_STATE_SUCCEEDED);
      expect((await client.logs(j.id)).stdout).toBe(`queued ${i + 1}\n`);
    }
    client.close();
  });

  it('keeps one job running through three kill -9s of its agent', async () => {
    const server = await startServer({ args: ['--heartbeat-timeout', '10s'] });
    const client = new TestClient(server.address, adminToken(server.dataDir));
    const workDir = await tempDir('runmesh-agent-phoenix-');
    let agent = await startAgent(server.address, { name: 'phoenix', workDir });
    await client.waitAgents(1);
    const lines = 60;
    const j = await client.submit({
      script: `i=1; while [ $i -le ${lines} ]; do echo "line $i"; i=$((i+1)); sleep 0.05; done`,
      maxAttempts: 1,
    });
    await client.waitFor(j.id, (x) => x.state === JobState.JOB_STATE_RUNNING);
    for (let round = 0; round < 3; round++) {
      // Each agent (the first, then each restarted one) streams more of the job before it is killed.
      const upTo = `line ${10 * (round + 1)}\n`;
      await waitUntil(async () => (await client.logs(j.id)).stdout.includes(upTo), {
        what: `the log up to ${upTo.trim()}`,
        timeoutMs: 20_000,
      });
      await agent.kill9();
      expect(jobPids(j.id).length).toBeGreaterThan(0); // the job outlives its agent
      agent = await startAgent(server.address, { name: 'phoenix', workDir });
    }
    const done = await client.waitDone(j.id, 30_000);
    expect(done.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect(done.attempts).toHaveLength(1);
    const { stdout } = await client.logs(j.id);
    expect(stdout).toBe(Array.from({ length: lines }, (_, i) => `line ${i + 1}\n`).join(''));
    expect(done.timeline.filter((t) => t.state === JobState.JOB_STATE_SUCCEEDED)).toHaveLength(1);
    await waitUntil(() => jobPids(j.id).length === 0, { what: 'the job to be gone', timeoutMs: 5000 });
    client.close();
  });
});
