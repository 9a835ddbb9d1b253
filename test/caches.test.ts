/**
 * Job caches end to end, with real processes: a control plane and one agent;
 * `submit --cache` saves a workspace path after a run that exits 0 and
 * restores it into the next job's workspace, a failed run saves nothing,
 * and `agents get` shows the agent's cache from its heartbeat.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobState } from '../proto/gen/runmesh/v1/job.js';
import { adminToken, TestClient } from './support/client.js';
import { run, startAgent, startServer, stopAll } from './support/processes.js';
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

  it('refuses a cache path out of the workspace, naming the field', async () => {
    const { code, out } = await cli(['submit', '--cache', 'deps:../up', '--', 'true']);
    expect(code).not.toBe(0);
    expect(out).toMatch(/spec\.caches\[0\]\.path: must be relative to the workspace, without \.\./);
  });
});
