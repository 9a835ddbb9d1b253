/**
 * Pipelines with real processes: the built CLI submits a pipeline file to a
 * `runmesh server` with two agents (fan-out, fan-in, a matrix, a failure
 * allowed and one not, skips carried on), `pipelines get` and `pipelines
 * cancel`; then three peers on a real etcd, the leader killed -9 while a need
 * runs, and each job of the chain run exactly once, in order.
 */
import { credentials, status, type ServiceError } from '@grpc/grpc-js';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobSpec, JobState, type Job } from '../proto/gen/runmesh/v1/job.js';
import { type Pipeline, PipelineServiceClient, PipelineState } from '../proto/gen/runmesh/v1/pipeline.js';
import { adminToken, bearer, TestClient } from './support/client.js';
import { startEtcd, type TestEtcd } from './support/etcd.js';
import { startMeshAgents, startPeers, waitAgentsOn, waitLeader } from './support/mesh.js';
import { CLI, startAgent, startServer, stopAll, tempDir, type ServerProc } from './support/processes.js';
import { waitUntil } from './support/wait.js';

const S = JobState;

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[]): Promise<CliResult> {
  return new Promise((resolve) =>
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, NO_COLOR: '1' } }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    ),
  );
}

function pipelines(address: string, token: string): { get(id: string): Promise<Pipeline>; list(): Promise<Pipeline[]>; close(): void } {
  const client = new PipelineServiceClient(address, credentials.createInsecure(), { interceptors: [bearer(token)] });
  return {
    get: (id) => new Promise((resolve, reject) => client.getPipeline({ id }, (err, res) => (err ? reject(err) : resolve(res.pipeline!)))),
    list: () =>
      new Promise((resolve, reject) =>
        client.listPipelines({ tenant: '', pageSize: 0, pageToken: '' }, (err, res) => (err ? reject(err) : resolve(res.pipelines))),
      ),
    close: () => client.close(),
  };
}

const byName = (p: Pipeline): Record<string, JobState> => Object.fromEntries(p.jobs.map((j) => [j.name, j.state]));

describe('pipelines on one server', () => {
  let server: ServerProc;
  let token: string;
  let client: TestClient;
  let dir: string;
  let api: ReturnType<typeof pipelines>;
  const at = (): string[] => ['--server', server.address, '--token', token];

  beforeAll(async () => {
    server = await startServer();
    dir = await tempDir('runmesh-pipelines-');
    // A matrix job names its os as a label it requires: one agent per os.
    await Promise.all([
      startAgent(server.address, { name: 'pl-linux', slots: 4, labels: 'os=linux' }),
      startAgent(server.address, { name: 'pl-mac', slots: 4, labels: 'os=mac' }),
    ]);
    token = adminToken(server.dataDir);
    client = new TestClient(server.address, token);
    api = pipelines(server.address, token);
    await client.waitAgents(2);
  });

  afterAll(async () => {
    client?.close();
    api?.close();
    await stopAll();
  });

  it('runs a file: fan-out, a matrix, fan-in past a failure allowed, and skips after one that is not', async () => {
    const order = join(dir, 'order.log');
    const file = join(dir, 'ci.yaml');
    await writeFile(
      file,
      [
        'env:',
        `  ORDER: ${order}`,
        'jobs:',
        '  build:',
        '    script: echo build >> "$ORDER"',
        '  unit:',
        '    needs: build',
        '    matrix: {os: [linux, mac]}',
        '    labels: {os: "${{ matrix.os }}"}',
        '    script: echo "unit $OS" >> "$ORDER"',
        '  lint:',
        '    needs: [build]',
        '    script: echo lint >> "$ORDER"; exit 3',
        '    allow_failure: true',
        '  package:',
        '    needs: [unit, lint]',
        '    script: echo package >> "$ORDER"',
        '  flaky:',
        '    needs: [build]',
        '    script: exit 1',
        '  publish:',
        '    needs: [flaky, package]',
        '    script: echo publish >> "$ORDER"',
        '  notify:',
        '    needs: [publish]',
        '    script: echo notify >> "$ORDER"',
        '',
      ].join('\n'),
    );
    const run = await cli(['submit', ...at(), '-f', file, '--wait']);
    expect(run.stderr).toMatch(/pipeline p_\w+ failed/);
    expect(run.code).toBe(1);
    const id = run.stdout.trim();
    const p = await api.get(id);
    expect(byName(p)).toEqual({
      build: S.JOB_STATE_SUCCEEDED,
      'unit (os=linux)': S.JOB_STATE_SUCCEEDED,
      'unit (os=mac)': S.JOB_STATE_SUCCEEDED,
      lint: S.JOB_STATE_FAILED,
      package: S.JOB_STATE_SUCCEEDED,
      flaky: S.JOB_STATE_FAILED,
      publish: S.JOB_STATE_SKIPPED,
      notify: S.JOB_STATE_SKIPPED,
    });
    expect(p.state).toBe(PipelineState.PIPELINE_STATE_FAILED);
    expect(p.jobs.find((j) => j.name === 'publish')?.reason).toBe('need flaky failed');
    expect(p.jobs.find((j) => j.name === 'notify')?.reason).toBe('need publish skipped');
    const lines = (await readFile(order, 'utf8')).trim().split('\n');
    expect(lines[0]).toBe('build');
    expect(lines.slice(1, 4).sort()).toEqual(['lint', 'unit linux', 'unit mac']);
    expect(lines.slice(4)).toEqual(['package']);
    // Each matrix job ran where its os label is, with its value in the environment.
    const linux = await client.get(p.jobs.find((j) => j.name === 'unit (os=linux)')!.id);
    expect([linux.attempts[0]?.agent, linux.spec?.env.OS, linux.pipelineId]).toEqual(['pl-linux', 'linux', id]);

    const listed = await cli(['pipelines', 'ls', ...at()]);
    expect(listed.stdout).toMatch(new RegExp(`^${id}\\s+failed\\s+8 jobs: 4 succeeded, 2 failed, 2 skipped\\s+default\\s`, 'm'));
    const shown = await cli(['pipelines', 'get', id, ...at()]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/^state:\s+failed$/m);
    expect(shown.stdout).toMatch(/^notify\s+skipped\s+publish\s+j_\w+\s+need publish skipped$/m);
    expect(shown.stdout).toMatch(/^lint \(may fail\)\s+failed\s+build\s/m);
    const json = JSON.parse((await cli(['pipelines', 'get', id, ...at(), '--json'])).stdout) as {
      jobs: Array<{ name: string; needs?: string[] }>;
    };
    expect(json.jobs.find((j) => j.name === 'package')?.needs).toEqual(['unit (os=linux)', 'unit (os=mac)', 'lint']);
  });

  it('cancels every job of a pipeline: the running one and the one waiting for it', async () => {
    const file = join(dir, 'slow.yaml');
    await writeFile(file, 'jobs:\n  slow:\n    command: [sleep, "30"]\n  after:\n    needs: [slow]\n    command: ["true"]\n');
    const id = (await cli(['submit', ...at(), '-f', file])).stdout.trim();
    const slow = (await api.get(id)).jobs[0]!;
    await client.waitFor(slow.id, (j) => j.state === S.JOB_STATE_RUNNING);
    const cancelled = await cli(['pipelines', 'cancel', id, ...at()]);
    expect(cancelled).toMatchObject({ code: 0, stdout: `${id}: 2 jobs cancelled\n` });
    const ended = await waitUntil(
      async () => {
        const p = await api.get(id);
        return p.state !== PipelineState.PIPELINE_STATE_RUNNING && p;
      },
      { what: 'the pipeline to end', timeoutMs: 20_000 },
    );
    expect([ended.state, byName(ended)]).toEqual([
      PipelineState.PIPELINE_STATE_CANCELLED,
      { slow: S.JOB_STATE_CANCELLED, after: S.JOB_STATE_CANCELLED },
    ]);
  });

  it('goes on past a need that failed once that need is retried and succeeds: its skipped dependents are held again', async () => {
    const fixed = join(dir, 'fixed');
    const file = join(dir, 'flaky.yaml');
    await writeFile(
      file,
      `jobs:\n  build:\n    command: [test, -e, "${fixed}"]\n  test:\n    needs: [build]\n    command: ["true"]\n` +
        '  deploy:\n    needs: [test]\n    command: ["true"]\n',
    );
    const id = (await cli(['submit', ...at(), '-f', file])).stdout.trim();
    const settled = (want: PipelineState) =>
      waitUntil(
        async () => {
          const p = await api.get(id);
          return p.state === want && p;
        },
        { what: `the pipeline to be ${PipelineState[want]}`, timeoutMs: 20_000 },
      );
    const failed = await settled(PipelineState.PIPELINE_STATE_FAILED);
    expect(byName(failed)).toEqual({ build: S.JOB_STATE_FAILED, test: S.JOB_STATE_SKIPPED, deploy: S.JOB_STATE_SKIPPED });
    await writeFile(fixed, '');
    await client.retry(failed.jobs.find((j) => j.name === 'build')!.id);
    const passed = await settled(PipelineState.PIPELINE_STATE_SUCCEEDED);
    expect(byName(passed)).toEqual({ build: S.JOB_STATE_SUCCEEDED, test: S.JOB_STATE_SUCCEEDED, deploy: S.JOB_STATE_SUCCEEDED });
    const deploy = await client.get(passed.jobs.find((j) => j.name === 'deploy')!.id);
    expect(deploy.timeline.map((t) => t.state)).toEqual([
      S.JOB_STATE_WAITING,
      S.JOB_STATE_SKIPPED,
      S.JOB_STATE_WAITING,
      S.JOB_STATE_QUEUED,
      S.JOB_STATE_ASSIGNED,
      S.JOB_STATE_RUNNING,
      S.JOB_STATE_SUCCEEDED,
    ]);
  });

  it('refuses at submit a cycle, naming it, a need outside the batch, and job flags beside -f', async () => {
    const file = join(dir, 'one.yaml');
    await writeFile(file, 'name: lone\ncommand: ["true"]\n');
    const flagged = await cli(['submit', ...at(), '-f', file, '--retry-on', 'exit:1']);
    expect([flagged.code, flagged.stderr.trim()]).toEqual([2, 'runmesh: --retry-on: with -f, the file says it']);
    const submitBatch = (specs: Array<Partial<JobSpec>>): Promise<ServiceError> =>
      new Promise((resolve) => client.jobs.submitBatch({ specs: specs.map((s) => JobSpec.fromPartial(s)) }, (err) => resolve(err!)));
    const cycle = await submitBatch([
      { name: 'a', argv: ['true'], needs: ['b'] },
      { name: 'b', argv: ['true'], needs: ['a'] },
    ]);
    expect([cycle.code, cycle.details]).toEqual([status.INVALID_ARGUMENT, 'specs[0].needs: needs cycle: a -> b -> a']);
    const unknown = await submitBatch([{ name: 'a', argv: ['true'], needs: ['nope'] }]);
    expect([unknown.code, unknown.details]).toEqual([status.INVALID_ARGUMENT, 'specs[0].needs[0]: no job named "nope" in this batch']);
  });
});

describe('pipelines on three peers and etcd', () => {
  let etcd: TestEtcd;

  beforeAll(async () => {
    etcd = await startEtcd();
  });

  afterAll(async () => {
    await stopAll();
    await etcd?.stop();
  });

  it('runs a chain exactly once and in order when the leader is killed -9 while a need runs', { timeout: 90_000 }, async () => {
    const peers = await startPeers(etcd, 'pl');
    const leaderId = await waitLeader(peers[0]!.client);
    const leader = peers.find((p) => p.id === leaderId)!;
    const others = peers.filter((p) => p !== leader);
    const [agent] = await startMeshAgents(others, 'pl', 1);
    await waitAgentsOn(others[0]!.client, [agent!.name]);
    const dir = await tempDir('runmesh-pipelines-');
    const order = join(dir, 'order.log');
    const go = join(dir, 'go');
    const client = others[0]!.client;
    // The first need runs until the test says go, after the kill: it ends while no leader (or a new one) holds the pipeline.
    const step = (name: string, needs: string[], first = ''): Partial<JobSpec> => ({
      name,
      needs,
      argv: ['sh', '-c', `${first}echo ${name} >> "${order}"`],
    });
    const jobs = await new Promise<Job[]>((resolve, reject) =>
      client.jobs.submitBatch(
        {
          specs: [step('a', [], `while [ ! -e "${go}" ]; do sleep 0.05; done; `), step('b', ['a']), step('c', ['b']), step('d', ['c'])].map(
            (s) => JobSpec.fromPartial(s),
          ),
        },
        (err, res) => (err ? reject(err) : resolve(res.jobs)),
      ),
    );
    await client.waitFor(jobs[0]!.id, (j) => j.state === S.JOB_STATE_RUNNING);
    await leader.kill9();
    const killedAt = Date.now();
    await writeFile(go, '');
    const done = await Promise.all(jobs.map((j) => client.waitDone(j.id, 60_000)));
    expect(done.map((j) => [j.spec?.name, j.state, j.attempts.length])).toEqual(
      ['a', 'b', 'c', 'd'].map((n) => [n, S.JOB_STATE_SUCCEEDED, 1]),
    );
    expect(await readFile(order, 'utf8')).toBe('a\nb\nc\nd\n');
    // b was released by a leader elected after the kill, from what the store held.
    const released = done[1]!.timeline.find((e) => e.state === S.JOB_STATE_QUEUED);
    expect([released?.reason, Date.parse(released?.at ?? '') > killedAt]).toEqual(['needs done', true]);
    const next = await waitLeader(client, leader.id);
    expect(others.map((p) => p.id)).toContain(next);
    const api = pipelines(others[1]!.address, adminToken(...peers.map((p) => p.dataDir)));
    try {
      const listed = await api.list();
      expect(listed.map((p) => [p.id, p.state, p.jobs.length])).toEqual([[jobs[0]!.pipelineId, PipelineState.PIPELINE_STATE_SUCCEEDED, 4]]);
    } finally {
      api.close();
    }
  });
});
