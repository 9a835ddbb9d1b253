/**
 * An agent cut off from every control plane (issue 16, fault 9), with real
 * processes: the control plane is stopped under two agents running a job
 * each. The one given `--disconnected-grace 2s` kills its job once it has been
 * cut off that long; the other (the default) keeps its job running. When the
 * control plane is back, the killed attempt is reported lost (not cancelled,
 * which would end the job as if a user asked), and the other job finishes.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FailureCategory, JobState } from '../proto/gen/runmesh/v1/job.js';
import { adminToken, TestClient } from './support/client.js';
import { jobPids } from './support/proc.js';
import { startAgent, startServer, stopAll, tempDir, waitForOutput } from './support/processes.js';
import { sleep, waitUntil } from './support/wait.js';

afterAll(stopAll);

describe('--disconnected-grace', () => {
  it('kills the jobs of an agent cut off past it, and only then; they are reported lost on reconnect', async () => {
    const dir = await tempDir('runmesh-cutoff-');
    const dataDir = join(dir, 'data');
    // A fixed address, so the agents find the restarted control plane; a heartbeat timeout they reconnect within.
    const listen = `unix://${join(dir, 'cp.sock')}`;
    const serverArgs = ['--heartbeat-timeout', '15s'];
    let server = await startServer({ dataDir, listen, args: serverArgs });
    let client = new TestClient(listen, adminToken(dataDir));
    const strict = await startAgent(listen, { name: 'strict', labels: 'grp=strict', args: ['--disconnected-grace', '2s'] });
    const patient = await startAgent(listen, { name: 'patient', labels: 'grp=patient' });
    await client.waitAgents(2);
    const script = 'echo start; sleep 20; echo done';
    const a = await client.submit({ script, selector: 'grp=strict', maxAttempts: 1 });
    const b = await client.submit({ script, selector: 'grp=patient', maxAttempts: 1 });
    for (const j of [a, b]) await client.waitFor(j.id, (x) => x.state === JobState.JOB_STATE_RUNNING);
    client.close();

    const cutAt = Date.now();
    expect(await server.stop('SIGTERM')).toBe(0);
    await waitForOutput(strict, /cut off past the disconnected grace: killing running attempts/, 10_000);
    await waitUntil(() => jobPids(a.id).length === 0, { what: "the strict agent's job to be killed", timeoutMs: 10_000 });
    const killedAfter = Date.now() - cutAt;
    expect(killedAfter).toBeGreaterThanOrEqual(2000);
    // The default: no limit. Its job is still there well past the other's grace.
    await sleep(1500);
    expect(jobPids(b.id).length).toBeGreaterThan(0);
    expect(patient.output()).not.toMatch(/cut off past the disconnected grace/);

    server = await startServer({ dataDir, listen, args: serverArgs });
    client = new TestClient(listen, adminToken(dataDir));
    const doneA = await client.waitDone(a.id, 30_000);
    expect(doneA.state).toBe(JobState.JOB_STATE_FAILED);
    expect(doneA.attempts).toHaveLength(1);
    expect(doneA.attempts[0]?.failure).toBe(FailureCategory.FAILURE_CATEGORY_AGENT_LOST);
    expect(doneA.attempts[0]?.message).toMatch(/cut off from every control plane for \d+s/);
    expect((await client.logs(a.id)).stdout).toBe('start\n');
    const doneB = await client.waitDone(b.id, 40_000);
    expect(doneB.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect((await client.logs(b.id)).stdout).toBe('start\ndone\n');
    expect(strict.output()).toMatch(/connected again after the cut-off/);
    client.close();
  });
});
