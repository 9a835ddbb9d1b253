/**
 * Partial failures that must never kill, lose or double-run a healthy job
 * (issue 16), with real processes and a real etcd.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FailureCategory, JobState } from '../proto/gen/runmesh/v1/job.js';
import { adminToken, bigintSafe, TestClient } from './support/client.js';
import { startEtcd, type TestEtcd } from './support/etcd.js';
import { startAgent, startServer, stopAll, tempDir } from './support/processes.js';
import { sleep, waitUntil } from './support/wait.js';
import { checkHistory, ledgerScript, recordFigures } from './chaos/history.js';

let etcd: TestEtcd;
const cleanups: Array<() => Promise<unknown>> = [];
beforeAll(async () => {
  etcd = await startEtcd();
});
afterAll(async () => {
  await stopAll();
  await etcd?.stop();
  for (const c of cleanups.splice(0)) await c();
});

describe('a store outage while an agent reconnects', () => {
  it('is never read as "the job is gone": the agent keeps its running job, and it finishes once, its log whole', async () => {
    const store = `etcd://${etcd.endpoint.replace(/^https?:\/\//, '')}`;
    const server = await startServer({ args: ['--store', store, '--heartbeat-timeout', '10s'] });
    const client = new TestClient(server.address, adminToken(server.dataDir));
    const first = await startAgent(server.address, { name: 'keeper' });
    await client.waitAgents(1);
    const ledger = join(await tempDir('runmesh-faults-'), 'ledger');
    const job = await client.submit({ script: ledgerScript(ledger, 30, 0.1) });
    await client.waitFor(job.id, (j) => j.state === JobState.JOB_STATE_RUNNING);

    // The agent restarts while etcd is down: its Hello lists the attempt, and the control plane cannot read the job.
    await first.kill9();
    etcd.kill('SIGKILL');
    await startAgent(server.address, { name: 'keeper', workDir: first.workDir });
    // Proving something does not happen: for a second of outage, nothing is abandoned.
    await sleep(1_000);
    await etcd.restart();

    const h = await checkHistory([client], [job.id], { ledger, lines: 30, timeoutMs: 30_000 });
    recordFigures('store outage while an agent reconnects', h);
    expect(h.violations).toEqual([]);
    expect(h.retried).toBe(0);
    client.close();
  });
});

describe('jobs that cannot run', () => {
  it('fail as NOT_RUNNABLE, are not retried, and never take their agent out of rotation', async () => {
    const server = await startServer();
    const client = new TestClient(server.address, adminToken(server.dataDir));
    await startAgent(server.address, { name: 'sturdy', slots: 1 });
    await client.waitAgents(1);
    const notExecutable = join(await tempDir('runmesh-not-runnable-'), 'data.txt');
    writeFileSync(notExecutable, 'not a program\n', { mode: 0o644 });
    // Three failures the agent caused would open its circuit breaker for 30 s; these are the jobs' own.
    const bad = [
      { argv: ['/nonexistent/runmesh-no-such-program'] },
      { argv: [notExecutable] },
      { argv: ['/nonexistent/again'] },
      { argv: ['/nonexistent/and-again'] },
    ];
    for (const spec of bad) {
      const job = await client.submit({ ...spec, maxAttempts: 3 });
      const done = await client.waitDone(job.id);
      expect(done.state, JSON.stringify(done.attempts, bigintSafe)).toBe(JobState.JOB_STATE_FAILED);
      expect(done.attempts).toHaveLength(1);
      expect(done.attempts[0]?.failure).toBe(FailureCategory.FAILURE_CATEGORY_NOT_RUNNABLE);
    }
    // The agent still takes work at once (a breaker would hold this job for 30 s).
    const good = await client.submit({ argv: ['echo', 'still trusted'] });
    expect((await client.waitDone(good.id, 8_000)).state).toBe(JobState.JOB_STATE_SUCCEEDED);
    client.close();
  });
});

describe('etcd unreachable for longer than the peer lease', () => {
  it('no peer exits: they stay degraded (not ready, say why), keep their agents and logs, and rejoin; the job finishes once', async () => {
    // An etcd of its own: the cluster's admin token is written by the first peer ever started on an etcd.
    const etcd = await startEtcd();
    cleanups.push(() => etcd.stop());
    const store = `etcd://${etcd.endpoint.replace(/^https?:\/\//, '')}`;
    const args = ['--store', store, '--peer-ttl', '2s', '--heartbeat-timeout', '10s'];
    const a = await startServer({ args });
    const b = await startServer({ args });
    const client = new TestClient(a.address, adminToken(a.dataDir, b.dataDir));
    await startAgent(a.address, { name: 'steadfast' });
    await client.waitAgents(1);
    const ledger = join(await tempDir('runmesh-faults-'), 'ledger');
    const job = await client.submit({ script: ledgerScript(ledger, 60, 0.1) });
    await client.waitFor(job.id, (j) => j.state === JobState.JOB_STATE_RUNNING);

    etcd.kill('SIGKILL');
    // Past both leases (2 s each): every peer lost its lease.
    const notReady = await waitUntil(
      async () => {
        const r = await fetch(`http://${a.http}/readyz`);
        const body = await r.text();
        return r.status === 503 && body.includes('lease') ? body : undefined;
      },
      { what: 'peer a to say it is not ready because it lost its lease', timeoutMs: 10_000, show: a.output },
    );
    expect(notReady).toContain('rejoining');
    // Mutations are refused, not queued somewhere they could be lost.
    const t0 = Date.now();
    const refused = await client.submit({ argv: ['true'] }).then(
      () => undefined,
      (err: { code?: number }) => err.code,
    );
    expect(refused).toBe(status.UNAVAILABLE);
    console.log(`faults: a submit during the etcd outage was refused in ${Date.now() - t0} ms`);
    expect(a.proc.exitCode).toBeNull();
    expect(b.proc.exitCode).toBeNull();
    await etcd.restart();

    await waitUntil(async () => (await fetch(`http://${a.http}/readyz`)).status === 200, {
      what: 'peer a to be ready again',
      timeoutMs: 15_000,
    });
    await waitUntil(async () => (await fetch(`http://${b.http}/readyz`)).status === 200, {
      what: 'peer b to be ready again',
      timeoutMs: 15_000,
    });
    const h = await checkHistory([client], [job.id], { ledger, lines: 60, timeoutMs: 30_000 });
    recordFigures('etcd unreachable past the peer lease (2 peers)', h);
    expect(h.violations).toEqual([]);
    expect(h.retried).toBe(0);
    // The mesh schedules again, on the agent that stayed connected.
    const after = await client.submit({ argv: ['echo', 'after the outage'] });
    expect((await client.waitDone(after.id, 20_000)).state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect(a.proc.exitCode).toBeNull();
    expect(b.proc.exitCode).toBeNull();
    client.close();
  });
});
