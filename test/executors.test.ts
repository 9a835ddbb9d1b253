/**
 * Executors and usage through a real in-process control plane (embedded
 * store) and protocol-level agents over real gRPC: a sandbox job goes only to
 * an agent that advertises the sandbox executor, and waits with a plain
 * reason while none does; an agent's containment and executors show in the
 * cluster API; an attempt's usage and an out-of-memory kill are stored as the
 * agent reported them, the kill retried like the job's own failure. The
 * built CLI, as real processes, submits with --executor and --no-network and
 * shows usage, the out-of-memory category, containment and executors.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { Assign } from '../proto/gen/runmesh/v1/agent.js';
import { Executor, FailureCategory, JobState } from '../proto/gen/runmesh/v1/job.js';
import { ControlPlane } from '../control-plane/server.js';
import { adminToken, TestClient } from './support/client.js';
import { run, startAgent, TOKEN as AGENT_TOKEN, tempDir } from './support/processes.js';
import { waitUntil } from './support/wait.js';
import { simAgent, type SimAgentOptions } from './support/sim-agent.js';

const TOKEN = 'executors-test-token';
const S = JobState;
let cleanup: Array<() => unknown> = [];

afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

async function start(joinToken = TOKEN): Promise<{ cp: ControlPlane; client: TestClient }> {
  const cp = await ControlPlane.start({
    listen: ['127.0.0.1:0'],
    httpListen: '127.0.0.1:0',
    dataDir: await tempDir('runmesh-executors-'),
    joinToken,
    logger: pino({ level: 'silent' }),
  });
  const client = new TestClient(cp.address, adminToken(cp.options.dataDir));
  cleanup.push(
    () => cp.close(),
    () => client.close(),
  );
  return { cp, client };
}

async function agent(cp: ControlPlane, o: Omit<SimAgentOptions, 'token'>): Promise<Assign[]> {
  const assigns: Assign[] = [];
  const a = simAgent(cp.address, { token: TOKEN, ...o, complete: (x) => (assigns.push(x), true) });
  cleanup.push(() => a.close());
  await a.welcomed;
  return assigns;
}

describe('executors', () => {
  it('places sandbox jobs only on an agent offering sandbox, shell jobs anywhere; waits with a plain reason while none offers it', async () => {
    const { cp, client } = await start();
    const plain = await agent(cp, { name: 'plain', slots: 4, executors: ['shell'], containment: 'process group (no writable cgroup)' });
    await client.waitAgents(1);

    const sandboxed = await client.submit({ argv: ['true'], executor: Executor.EXECUTOR_SANDBOX, noNetwork: true });
    const waiting = await client.waitFor(sandboxed.id, (j) => j.waitingReason !== '');
    expect(waiting.state).toBe(S.JOB_STATE_QUEUED);
    expect(waiting.waitingReason).toBe('unschedulable: no agent offers the sandbox executor');
    expect((await client.status()).unschedulable.map((u) => u.jobId)).toContain(sandboxed.id);

    const bwrap = await agent(cp, {
      name: 'bwrap',
      slots: 4,
      executors: ['shell', 'sandbox'],
      containment: 'cgroup v2 /sys/fs/cgroup/runmesh (cpu memory pids)',
    });
    await client.waitAgents(2);
    expect((await client.waitDone(sandboxed.id)).attempts.map((a) => a.agent)).toEqual(['bwrap']);
    // The agent is sent the executor and no_network as submitted.
    expect(bwrap[0]?.spec).toMatchObject({ executor: Executor.EXECUTOR_SANDBOX, noNetwork: true });

    const more = await Promise.all(
      Array.from({ length: 6 }, (_, k) =>
        client.submit({ argv: ['true'], executor: k % 2 ? Executor.EXECUTOR_SANDBOX : Executor.EXECUTOR_UNSPECIFIED }),
      ),
    );
    const done = await Promise.all(more.map((j) => client.waitDone(j.id)));
    done.forEach((j, k) => {
      expect(j.state).toBe(S.JOB_STATE_SUCCEEDED);
      if (k % 2) expect(j.attempts[0]?.agent).toBe('bwrap');
    });
    expect(plain.every((a) => a.spec?.executor === Executor.EXECUTOR_SHELL)).toBe(true);

    const agents = (await client.agents()).agents;
    expect(agents.map((a) => [a.name, a.containment, a.executors])).toEqual([
      ['bwrap', 'cgroup v2 /sys/fs/cgroup/runmesh (cpu memory pids)', [Executor.EXECUTOR_SHELL, Executor.EXECUTOR_SANDBOX]],
      ['plain', 'process group (no writable cgroup)', [Executor.EXECUTOR_SHELL]],
    ]);
  });

  it('stores each attempt’s usage; an out-of-memory kill is retried while attempts remain and never takes the agent out of rotation', async () => {
    const { cp, client } = await start();
    const usage = { peakMemoryBytes: 6n * 1024n ** 3n, cpuSeconds: 1.25 };
    const oom = (a: Assign) =>
      a.spec?.name === 'hog'
        ? { exitCode: -1, failure: FailureCategory.FAILURE_CATEGORY_OUT_OF_MEMORY, message: 'over its memory limit', usage }
        : { usage };
    await agent(cp, { name: 'only', slots: 1, executors: ['shell'], outcome: oom });
    await client.waitAgents(1);

    const hog = await client.submit({ name: 'hog', argv: ['x'], maxAttempts: 4, resources: { slots: 1, cpuMillis: 0, memoryMb: 64 } });
    const dead = await client.waitDone(hog.id, 60_000);
    expect(dead.state).toBe(S.JOB_STATE_DEAD);
    expect(dead.failure).toBe(FailureCategory.FAILURE_CATEGORY_OUT_OF_MEMORY);
    expect(dead.attempts.map((a) => [a.failure, a.usage])).toEqual(
      Array.from({ length: 4 }, () => [FailureCategory.FAILURE_CATEGORY_OUT_OF_MEMORY, usage]),
    );
    // Four failures in a row on the one agent: an infrastructure failure would have opened its breaker by now.
    const next = await client.submit({ argv: ['true'] });
    const ok = await client.waitDone(next.id, 10_000);
    expect(ok.state).toBe(S.JOB_STATE_SUCCEEDED);
    expect(ok.attempts[0]?.usage).toEqual(usage);
  });
});

/** Runs the built CLI to its exit: its exit code and its output (stdout and stderr). */
async function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: string }> {
  const p = run(args, env);
  await waitUntil(() => p.proc.exitCode !== null, { what: `runmesh ${args.join(' ')} to exit`, timeoutMs: 30_000, show: p.output });
  return { code: p.proc.exitCode, out: p.output() };
}

describe('the CLI', () => {
  it('submits with --executor sandbox --no-network; jobs get shows usage and the OOM kill; agents get shows containment and executors', async () => {
    const { cp, client } = await start();
    const usage = { peakMemoryBytes: 6n * 1024n ** 3n, cpuSeconds: 1.25 };
    const oom = { exitCode: -1, failure: FailureCategory.FAILURE_CATEGORY_OUT_OF_MEMORY, message: 'over its memory limit', usage };
    await agent(cp, {
      name: 'bwrap',
      slots: 2,
      executors: ['shell', 'sandbox'],
      containment: 'cgroup v2 /sys/fs/cgroup/rm (cpu memory pids)',
      outcome: () => oom,
    });
    await client.waitAgents(1);
    const env = { RUNMESH_TOKEN: adminToken(cp.options.dataDir), RUNMESH_SERVER: cp.address };

    const submitted = await cli(['submit', '--executor', 'sandbox', '--no-network', '--memory', '64', '--cpu', '500', '--', 'hog'], env);
    expect(submitted.code, submitted.out).toBe(0);
    const id = /j_[0-9A-Za-z]+/.exec(submitted.out)?.[0] ?? '';
    expect((await client.waitDone(id)).state).toBe(S.JOB_STATE_FAILED);

    const page = await cli(['jobs', 'get', id], env);
    expect(page.code, page.out).toBe(0);
    expect(page.out).toMatch(/^executor: +sandbox, no network$/m);
    expect(page.out).toMatch(/^limits: +memory 64 MiB, cpu 500m$/m);
    expect(page.out).toMatch(/^state: +failed \(out of memory: over its memory limit\)$/m);
    expect(page.out).toMatch(/PEAK MEM +CPU/);
    expect(page.out).toMatch(/out of memory .* 6144 MiB +1\.25 s +over its memory limit/);

    const json = await cli(['jobs', 'get', id, '--json'], env);
    const job = JSON.parse(json.out.slice(json.out.indexOf('{'))) as {
      spec: unknown;
      attempts: Array<{ failure: string; usage: unknown }>;
    };
    expect(job.spec).toMatchObject({ executor: 'EXECUTOR_SANDBOX', noNetwork: true });
    expect(job.attempts[0]).toMatchObject({
      failure: 'FAILURE_CATEGORY_OUT_OF_MEMORY',
      usage: { peakMemoryBytes: '6442450944', cpuSeconds: 1.25 },
    });

    const shown = await cli(['agents', 'get', 'bwrap'], env);
    expect(shown.code, shown.out).toBe(0);
    expect(shown.out).toMatch(/^containment: +cgroup v2 \/sys\/fs\/cgroup\/rm \(cpu memory pids\)$/m);
    expect(shown.out).toMatch(/^executors: +shell, sandbox$/m);
  });

  it('refuses --no-network without the sandbox, an unknown executor, reserved agent labels and a zero pids limit, as usage errors', async () => {
    const noServer = { RUNMESH_SERVER: '127.0.0.1:1', RUNMESH_TOKEN: 'x' };
    const shellOffline = await cli(['submit', '--no-network', '--', 'true'], noServer);
    expect([shellOffline.code, shellOffline.out]).toEqual([2, expect.stringContaining('--no-network needs --executor sandbox') as unknown]);
    const unknown = await cli(['submit', '--executor', 'docker', '--', 'true'], noServer);
    expect([unknown.code, unknown.out]).toEqual([
      2,
      expect.stringContaining('--executor: unknown value "docker" (one of shell, sandbox)') as unknown,
    ]);
    const work = await tempDir('runmesh-executors-agent-');
    const agentArgs = ['agent', '--server', '127.0.0.1:1', '--join-token', 't', '--work-dir', work];
    const spoof = await cli([...agentArgs, '--labels', 'runmesh.io/executor-sandbox=true']);
    expect([spoof.code, spoof.out]).toEqual([2, expect.stringContaining('--labels: "runmesh.io/executor-sandbox" is reserved') as unknown]);
    const zero = await cli([...agentArgs, '--pids-limit', '0']);
    expect([zero.code, zero.out]).toEqual([2, expect.stringContaining('--pids-limit: must be at least 1') as unknown]);
  });
});

describe('a real agent', () => {
  it('says its containment once at start (a warning for the process-group fallback) and advertises it and its executors', async () => {
    const { cp, client } = await start(AGENT_TOKEN);
    const a = await startAgent(cp.address, { name: 'real', args: ['--pids-limit', '64'] });
    cleanup.push(() => a.stop());
    await client.waitAgents(1);
    const shown = (await client.agents()).agents.find((x) => x.name === 'real');
    expect(shown?.containment).toBeTruthy();
    expect(shown?.executors).toContain(Executor.EXECUTOR_SHELL);
    expect(shown?.labels['runmesh.io/executor-shell']).toBe('true');
    const said = a
      .output()
      .split('\n')
      .filter((l) => l.includes('"containment"') && l.includes('"pids_limit":64'))
      .map((l) => JSON.parse(l) as { level: number; containment: string });
    expect(said).toHaveLength(1);
    expect(said[0]?.containment).toBe(shown?.containment);
    expect(said[0]?.level).toBe(said[0]?.containment.startsWith('process group') ? 40 : 30);
    // A job runs on it as before; its usage is there exactly when the agent has a cgroup for it.
    const job = await client.submit({ argv: ['true'] });
    const done = await client.waitDone(job.id);
    expect(done.state).toBe(S.JOB_STATE_SUCCEEDED);
    expect(done.attempts[0]?.usage === undefined).toBe(shown!.containment.startsWith('process group'));
  });

  it('with --no-cgroups gives its jobs their process group only, says so as a warning, and records no usage', async () => {
    const { cp, client } = await start(AGENT_TOKEN);
    const a = await startAgent(cp.address, { name: 'nocg', args: ['--no-cgroups'] });
    cleanup.push(() => a.stop());
    await client.waitAgents(1);
    const shown = (await client.agents()).agents.find((x) => x.name === 'nocg');
    expect(shown?.containment).toBe('process group only: turned off (--no-cgroups)');
    const said = a
      .output()
      .split('\n')
      .filter((l) => l.includes('"containment"'))
      .map((l) => JSON.parse(l) as { level: number });
    expect(said.map((l) => l.level)).toEqual([40]);
    const job = await client.submit({ argv: ['true'] });
    const done = await client.waitDone(job.id);
    expect(done.state).toBe(S.JOB_STATE_SUCCEEDED);
    expect(done.attempts[0]?.usage).toBeUndefined();
  });
});
