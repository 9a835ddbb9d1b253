/**
 * Job caches end to end, with real processes: a control plane and one agent;
 * `submit --cache` saves a workspace path after a run that exits 0 and
 * restores it into the next job's workspace, a failed run saves nothing,
 * and `agents get` shows the agent's cache from its heartbeat.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobState } from '../proto/gen/runmesh/v1/job.js';
import { adminToken, TestClient } from './support/client.js';
import { run, startAgent, startServer, stopAll, tempDir } from './support/processes.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AgentState } from '../proto/gen/runmesh/v1/cluster.js';
import { waitUntil } from './support/wait.js';

afterAll(async () => {
  await stopAll();
});

describe('job caches', () => {
  let client: TestClient;
  let address = '';
  let token = '';

  /** Runs the CLI against the server: its exit code and output. */
  async function cli(args: string[]): Promise<{ code: number; out: string }> {
    const p = run(args, { RUNMESH_SERVER: address, RUNMESH_TOKEN: token, RUNMESH_LOG_LEVEL: 'silent' });
    await waitUntil(() => p.proc.exitCode !== null, { what: `runmesh ${args[0]} to exit`, timeoutMs: 20_000, show: p.output });
    return { code: p.proc.exitCode ?? -1, out: p.output() };
  }

  /** Submits with the CLI and waits for the job to end. */
  async function job(args: string[]) {
    const { code, out } = await cli(['submit', ...args]);
    expect(code, out).toBe(0);
    return client.waitDone(out.trim());
  }

  beforeAll(async () => {
    const server = await startServer();
    address = server.address;
    token = adminToken(server.dataDir);
    client = new TestClient(address, token);
    await startAgent(address, { name: 'cached', args: ['--cache-max', '10MB'] });
    await client.waitAgents(1);
  });

  it('restores what a successful job saved, saves nothing of a failed one, and agents get shows the cache', async () => {
    const first = await job([
      '--cache',
      'deps:node_modules',
      '--script',
      'mkdir -p node_modules/pkg && echo warm > node_modules/pkg/index.js',
    ]);
    expect(first.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    // No affinity given: the first cache key, in its tenant, is the job's affinity.
    expect(first.spec?.affinityKey).toBe('cache:default:deps');

    const caches = (key: string, path: string) => [{ key, path }];
    const second = await client.waitDone(
      (await client.submit({ argv: ['cat', 'node_modules/pkg/index.js'], caches: caches('deps', 'node_modules') })).id,
    );
    expect(second.state, second.attempts.at(-1)?.message).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect((await client.logs(second.id)).stdout).toBe('warm\n');

    const failed = await client.waitDone(
      (await client.submit({ script: 'mkdir out && echo half > out/f && exit 3', caches: caches('broken', 'out') })).id,
    );
    expect(failed.state).toBe(JobState.JOB_STATE_FAILED);
    const after = await client.waitDone((await client.submit({ argv: ['test', '!', '-e', 'out/f'], caches: caches('broken', 'out') })).id);
    expect(after.state).toBe(JobState.JOB_STATE_SUCCEEDED);

    // One entry (deps); one restore found its key (the second job) of four.
    await waitUntil(
      async () => {
        const [a] = (await client.agents()).agents;
        return a?.cacheEntries === 1 && a.cacheHits === 1 && a.cacheMisses === 3;
      },
      { what: 'the heartbeat to bring the cache figures' },
    );
    const { out } = await cli(['agents', 'get', 'cached']);
    expect(out).toMatch(/cache:\s+0\.0 MiB, 1 entries, 25% hit rate \(1 of 4 restores\)/);
  });

  it('saves the caches of an attempt that outlived a kill -9 of its agent, once it exits 0 after the restart', async () => {
    // A server of its own: a heartbeat timeout long enough for the killed agent to be back before its attempt is lost.
    const server = await startServer({ args: ['--heartbeat-timeout', '10s'] });
    const own = new TestClient(server.address, adminToken(server.dataDir));
    try {
      const agent = await startAgent(server.address, { name: 'restarted' });
      await own.waitAgents(1);
      const marker = join(await tempDir('runmesh-cache-marker-'), 'go');
      const caches = [{ key: 'kept', path: 'keep' }];
      const first = await own.submit({
        script: `mkdir keep && echo survived > keep/f && while [ ! -e ${marker} ]; do sleep 0.05; done`,
        caches,
      });
      await own.waitFor(first.id, (j) => j.state === JobState.JOB_STATE_RUNNING);
      await agent.kill9();
      await startAgent(server.address, { name: 'restarted', workDir: agent.workDir });
      await waitUntil(
        async () => (await own.agents()).agents.some((a) => a.name === 'restarted' && a.state === AgentState.AGENT_STATE_READY),
        {
          what: 'the agent back',
        },
      );
      writeFileSync(marker, '');
      expect((await own.waitDone(first.id)).state).toBe(JobState.JOB_STATE_SUCCEEDED);
      const second = await own.waitDone((await own.submit({ argv: ['cat', 'keep/f'], caches })).id);
      expect(second.state, second.attempts.at(-1)?.message).toBe(JobState.JOB_STATE_SUCCEEDED);
      expect((await own.logs(second.id)).stdout).toBe('survived\n');
    } finally {
      own.close();
    }
  }, 60_000);

  it('refuses a cache path out of the workspace, naming the field', async () => {
    const { code, out } = await cli(['submit', '--cache', 'deps:../up', '--', 'true']);
    expect(code).not.toBe(0);
    expect(out).toMatch(/spec\.caches\[0\]\.path: must be relative to the workspace, without \.\./);
  });
});
