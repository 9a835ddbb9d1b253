/**
 * A data dir belongs to one process (issue 16, fault 4), and a peer's id is
 * stable across restarts (fault 5), with real server processes: a second
 * server on a data dir in use refuses to start before it touches anything,
 * and the first one goes on scheduling and says it is ready; a lock left by
 * a dead process is taken over; after a restart the peer has the same id, so
 * the logs of jobs it ran before are still its own to read.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { JobState } from '../proto/gen/runmesh/v1/job.js';
import { adminToken, TestClient } from './support/client.js';
import { run, startAgent, startServer, stopAll, tempDir } from './support/processes.js';
import { waitUntil } from './support/wait.js';

afterAll(stopAll);

/** A pid that is not running: the highest one the kernel would hand out, plus one. */
const DEAD_PID = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8').trim()) + 1;

describe('a data dir in use', () => {
  it('refuses a second server before it touches anything; the first goes on scheduling and stays ready', async () => {
    const first = await startServer();
    const client = new TestClient(first.address, adminToken(first.dataDir));
    await startAgent(first.address, { name: 'steady' });
    await client.waitAgents(1);
    const adminBefore = readFileSync(join(first.dataDir, 'admin.token'), 'utf8');

    const second = run(['server', '--listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0', '--data-dir', first.dataDir]);
    await waitUntil(() => second.proc.exitCode !== null, { what: 'the second server to exit', timeoutMs: 15_000, show: second.output });
    expect(second.proc.exitCode).toBe(1);
    expect(second.output()).toContain(`data dir ${first.dataDir} is in use by pid ${first.proc.pid}`);
    expect(readFileSync(join(first.dataDir, 'admin.token'), 'utf8')).toBe(adminBefore);

    const job = await client.submit({ argv: ['echo', 'still scheduling'] });
    expect((await client.waitDone(job.id)).state).toBe(JobState.JOB_STATE_SUCCEEDED);
    const ready = await fetch(`http://${first.http}/readyz`);
    expect(ready.status).toBe(200);
    client.close();
  });

  it('takes over the lock of a process that is gone', async () => {
    const dataDir = await tempDir('runmesh-stale-lock-');
    writeFileSync(join(dataDir, 'lock'), JSON.stringify({ pid: DEAD_PID, started: '1', host: hostname(), since: 'then' }));
    const server = await startServer({ dataDir });
    expect(JSON.parse(readFileSync(join(dataDir, 'lock'), 'utf8'))).toMatchObject({ pid: server.proc.pid });
    expect(await server.stop('SIGTERM')).toBe(0);
    // A clean stop leaves no lock behind.
    expect(() => readFileSync(join(dataDir, 'lock'))).toThrow(/ENOENT/);
  });
});

describe("a peer's id", () => {
  it('is kept in the data dir: after a restart the logs of the jobs it ran are still readable', async () => {
    const dataDir = await tempDir('runmesh-stable-id-');
    let server = await startServer({ dataDir });
    let client = new TestClient(server.address, adminToken(dataDir));
    const agent = await startAgent(server.address, { name: 'scribe' });
    const job = await client.submit({ script: 'echo before the restart' });
    expect((await client.waitDone(job.id)).state).toBe(JobState.JOB_STATE_SUCCEEDED);
    const id = readFileSync(join(dataDir, 'peer-id'), 'utf8').trim();
    expect(id).toMatch(/-[0-9a-f]{6}$/);
    client.close();
    await agent.stop('SIGTERM');
    expect(await server.stop('SIGTERM')).toBe(0);

    server = await startServer({ dataDir });
    client = new TestClient(server.address, adminToken(dataDir));
    expect(readFileSync(join(dataDir, 'peer-id'), 'utf8').trim()).toBe(id);
    expect((await client.logs(job.id)).stdout).toBe('before the restart\n');
    client.close();
  });
});
