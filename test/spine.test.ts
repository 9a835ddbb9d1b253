/**
 * The spine end to end with real processes: `runmesh server` and two
 * `runmesh agent`s, jobs with real output, cancel, host loss, and a server restart.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FailureCategory, JobState } from '../proto/gen/runmesh/v1/job.js';
import { adminToken, TestClient } from './support/client.js';
import { jobPids } from './support/proc.js';
import { startAgent, startServer, stopAll, type AgentProc, type ServerProc } from './support/processes.js';
import { waitUntil } from './support/wait.js';

describe('spine: server + 2 agents as processes', () => {
  let server: ServerProc;
  let agents: AgentProc[];
  let client: TestClient;

  beforeAll(async () => {
    server = await startServer();
    agents = await Promise.all([
      startAgent(server.address, { name: 'a1', slots: 4 }),
      startAgent(server.address, { name: 'a2', slots: 4 }),
    ]);
    client = new TestClient(server.address, adminToken(server.dataDir));
    await client.waitAgents(2);
  });

  afterAll(async () => {
    client?.close();
    await stopAll();
  });

  it('runs 50 jobs and every output and exit code matches', async () => {
    const jobs = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        client.submit({ name: `job-${i}`, script: `echo "out ${i}"; echo "err ${i}" >&2; exit ${i % 4}` }),
      ),
    );
    const done = await Promise.all(jobs.map((j) => client.waitDone(j.id, 60_000)));
    for (const [i, j] of done.entries()) {
      expect(j.state).toBe(i % 4 === 0 ? JobState.JOB_STATE_SUCCEEDED : JobState.JOB_STATE_FAILED);
      expect(j.exitCode).toBe(i % 4);
      expect(j.attempts).toHaveLength(1); // none lost and run again
      const logs = await client.logs(j.id);
      expect(logs.stdout).toBe(`out ${i}\n`);
      expect(logs.stderr).toBe(`err ${i}\n`);
    }
    const agentsUsed = new Set(done.map((j) => j.attempts[0]?.agent));
    expect(agentsUsed.size).toBe(2);
  });

  it('runs jobs one after another, each once, on supervisors kept from the job before', async () => {
    for (let i = 0; i < 12; i++) {
      const j = await client.waitDone((await client.submit({ script: `echo seq ${i}` })).id);
      expect(j.state).toBe(JobState.JOB_STATE_SUCCEEDED);
      expect(j.attempts).toHaveLength(1);
      expect((await client.logs(j.id)).stdout).toBe(`seq ${i}\n`);
    }
  });

  it('passes env and the job identity to the process', async () => {
    const j = await client.submit({ argv: ['sh', '-c', 'echo "$GREETING $RUNMESH_JOB_ID $RUNMESH_ATTEMPT"'], env: { GREETING: 'hi' } });
    await client.waitDone(j.id);
    expect((await client.logs(j.id)).stdout).toBe(`hi ${j.id} 1\n`);
  });

  it("runs a script larger than Linux's 128 KiB for one argument (it is run from a file)", async () => {
    const filler = Array.from({ length: 6000 }, (_, i) => `: ${'x'.repeat(40)} ${i}`).join('\n');
    const j = await client.submit({ script: `${filler}\necho "$(wc -c < "$0") bytes of script"` });
    expect(Buffer.byteLength(j.spec?.script ?? '')).toBeGreaterThan(200 * 1024);
    const done = await client.waitDone(j.id);
    expect(done.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect((await client.logs(j.id)).stdout).toMatch(/^\d{6} bytes of script\n$/);
  });

  it('reports a program that cannot start', async () => {
    const j = await client.submit({ argv: ['/nonexistent/program'] });
    const done = await client.waitDone(j.id);
    expect(done.state).toBe(JobState.JOB_STATE_FAILED);
    expect(done.failure).toBe(FailureCategory.FAILURE_CATEGORY_NOT_RUNNABLE);
  });

  it('cancels a sleep 600 with a child process and leaves no process behind', async () => {
    const j = await client.submit({ script: 'sleep 600 & sleep 600; wait', cancelGraceSeconds: 2 });
    await client.waitFor(j.id, (x) => x.state === JobState.JOB_STATE_RUNNING);
    await waitUntil(() => jobPids(j.id).length >= 3, { what: 'the job and its child to run', timeoutMs: 10_000 });
    await client.cancel(j.id);
    const done = await client.waitDone(j.id);
    expect(done.state).toBe(JobState.JOB_STATE_CANCELLED);
    await waitUntil(() => jobPids(j.id).length === 0, { what: 'every process of the job to exit', timeoutMs: 10_000 });
  });

  it('times a job out and kills its process group', async () => {
    const j = await client.submit({ script: 'sleep 600', timeoutSeconds: 1, cancelGraceSeconds: 1 });
    const done = await client.waitDone(j.id);
    expect(done.state).toBe(JobState.JOB_STATE_TIMED_OUT);
    expect(done.failure).toBe(FailureCategory.FAILURE_CATEGORY_TIMEOUT);
    await waitUntil(() => jobPids(j.id).length === 0, { what: 'the timed-out job to be gone', timeoutMs: 10_000 });
  });

  it('retries a failing job with backoff, then gives up', async () => {
    const j = await client.submit({ script: 'echo try $RUNMESH_ATTEMPT; exit 7', maxAttempts: 2 });
    const done = await client.waitDone(j.id);
    expect(done.state).toBe(JobState.JOB_STATE_DEAD);
    expect(done.attempts.map((a) => a.exitCode)).toEqual([7, 7]);
    expect((await client.logs(j.id, { attempt: 2 })).stdout).toBe('try 2\n');
  });

  it('returns the first job for a repeated idempotency key', async () => {
    const a = await client.submit({ argv: ['true'], idempotencyKey: 'deploy-42' });
    const b = await client.submit({ argv: ['true'], idempotencyKey: 'deploy-42' });
    expect(b.id).toBe(a.id);
  });

  it('follows a log live until the job ends', async () => {
    const j = await client.submit({ script: 'for i in 1 2 3 4 5; do echo line $i; sleep 0.1; done' });
    const logs = await client.logs(j.id, { follow: true });
    expect(logs.stdout).toBe('line 1\nline 2\nline 3\nline 4\nline 5\n');
    // Resuming from a record number gives exactly the records from there on. (How the lines were cut
    // into records depends on how the supervisor's reads fell: on a loaded runner, fewer than five.)
    const all = (await client.logs(j.id)).records;
    const from = all.length - 1;
    const resumed = await client.logs(j.id, { fromSeq: from });
    expect(resumed.records.map((r) => r.seq)).toEqual(all.slice(from).map((r) => r.seq));
    expect(resumed.records[0]?.seq).toBe(from);
  });

  it('re-queues the job of a host that is lost mid-job onto the other agent', async () => {
    const j = await client.submit({ script: 'echo start; sleep 3; echo end', maxAttempts: 2 });
    const running = await client.waitFor(j.id, (x) => x.state === JobState.JOB_STATE_RUNNING);
    const victim = agents.find((a) => a.name === running.attempts[0]?.agent)!;
    await waitUntil(() => jobPids(j.id).length > 0, { what: 'the job to start', timeoutMs: 10_000 });
    // The host dies: the agent and every process of the job.
    await victim.kill9();
    const supervisor = Number(await readFile(join(victim.workDir, 'attempts', `${j.id}.1`, 'supervisor.pid'), 'utf8'));
    process.kill(supervisor, 'SIGKILL');
    for (const pid of jobPids(j.id)) process.kill(pid, 'SIGKILL');
    const done = await client.waitDone(j.id, 40_000);
    expect(done.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect(done.attempts[0]?.failure).toBe(FailureCategory.FAILURE_CATEGORY_AGENT_LOST);
    expect(done.attempts[1]?.agent).not.toBe(victim.name);
    expect((await client.logs(j.id)).stdout).toBe('start\nend\n');
  });
});
