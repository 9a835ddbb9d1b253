/**
 * Schedules and templates with real processes on the embedded store: a
 * control plane, an agent and the built CLI. An every-second schedule starts
 * each tick once, its jobs carry RUNMESH_SCHEDULE and RUNMESH_SCHEDULED_AT and
 * name their schedule; pause stops it; trigger runs at once under the overlap
 * policy (skip, cancel-previous); another tenant's schedule is NOT_FOUND;
 * templates fill in on the server, with missing and unknown parameters
 * refused by name; a schedule can submit a template. The three-peer etcd
 * failover is schedules-failover.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobState, type Job } from '../proto/gen/runmesh/v1/job.js';
import { OverlapPolicy } from '../proto/gen/runmesh/v1/schedule.js';
import { adminToken, TestClient } from './support/client.js';
import { CLI, startAgent, startServer, stopAll, tempDir, type ServerProc } from './support/processes.js';
import { ScheduleClient, tickGaps } from './support/schedules.js';
import { sleep, waitUntil } from './support/wait.js';

let server: ServerProc;
let dir: string;
let tokenA: string;
let tokenB: string;
let a: ScheduleClient;
let jobsA: TestClient;

function cli(args: string[], token: string): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, RUNMESH_SERVER: server.address, RUNMESH_TOKEN: token, RUNMESH_LOG_LEVEL: 'silent' },
  });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

function newToken(admin: string, tenant: string): string {
  const out = cli(['tokens', 'create', '--role', 'submitter', '--tenant', tenant, '--json'], admin).out;
  return (JSON.parse(out.slice(out.indexOf('{'))) as { token: string }).token;
}

beforeAll(async () => {
  dir = await tempDir('runmesh-sched-cp-');
  server = await startServer({ dataDir: dir });
  await startAgent(server.address, { name: 'sched-agent', slots: 8 });
  const admin = adminToken(dir);
  tokenA = newToken(admin, 'a');
  tokenB = newToken(admin, 'b');
  a = new ScheduleClient(server.address, tokenA);
  jobsA = new TestClient(server.address, tokenA);
  await new TestClient(server.address, admin).waitAgents(1, 30_000);
}, 90_000);

afterAll(async () => {
  a?.close();
  jobsA?.close();
  await stopAll();
});

describe('a schedule', () => {
  it('starts each tick of an every-second pattern once, with its env, linked to the schedule, until paused', async () => {
    const made = cli(
      [
        'schedules',
        'create',
        'tick',
        '--cron',
        '* * * * * *',
        '--overlap',
        'queue',
        '--json',
        '--',
        'sh',
        '-c',
        'echo "$RUNMESH_SCHEDULE@$RUNMESH_SCHEDULED_AT"',
      ],
      tokenA,
    );
    expect(made.code, made.out).toBe(0);
    const jobs = await waitUntil(async () => ((await a.jobsOf('tick')).length >= 3 ? a.jobsOf('tick') : undefined), {
      what: 'three ticks of schedule tick',
      timeoutMs: 15_000,
    });
    expect(cli(['schedules', 'pause', 'tick'], tokenA)).toEqual({ code: 0, out: 'schedule tick paused\n' });
    const paused = (await a.jobsOf('tick')).length;
    expect(tickGaps(jobs)).toEqual({ missing: [], twice: [] });
    const done = await jobsA.waitDone(jobs[0]!.id, 20_000);
    expect(done.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect((await jobsA.logs(done.id)).stdout).toBe(`tick@${done.scheduledAt}\n`);
    const got = JSON.parse(cli(['schedules', 'get', 'tick', '--json'], tokenA).out) as {
      paused: boolean;
      nextTicks?: string[];
      runs: Array<{ jobIds: string[] }>;
    };
    expect(got.paused).toBe(true);
    expect(got.nextTicks ?? []).toEqual([]);
    expect(got.runs.flatMap((r) => r.jobIds)).toContain(jobs[0]!.id);
    // Paused: no tick fires (the leader checks every second at most).
    await sleep(1200);
    expect((await a.jobsOf('tick')).length).toBe(paused);
    const resumed = JSON.parse(cli(['schedules', 'resume', 'tick', '--json'], tokenA).out) as { nextTicks: string[] };
    expect(resumed.nextTicks).toHaveLength(3);
    expect(cli(['schedules', 'rm', 'tick'], tokenA)).toEqual({ code: 0, out: 'schedule tick deleted\n' });
  });

  it('runs on trigger under its overlap policy: skip while a run is active, or cancel it', async () => {
    await a.create({
      name: 'slow',
      cron: '0 0 1 1 *',
      overlap: OverlapPolicy.OVERLAP_POLICY_SKIP,
      job: { argv: ['sleep', '30'] } as never,
    });
    const first = await a.trigger('slow');
    expect(first.jobIds).toHaveLength(1);
    const second = await a.trigger('slow');
    expect(second).toMatchObject({ jobIds: [], note: `skipped: run ${first.jobIds[0]} still active (overlap: skip)` });
    // From a file: the job, and the schedule's own settings under schedule:.
    const file = join(dir, 'newest.yaml');
    await writeFile(file, 'schedule: {cron: "0 0 1 1 *", overlap: cancel-previous}\ncommand: [sleep, "30"]\n');
    expect(cli(['schedules', 'create', 'newest', '-f', file], tokenA)).toMatchObject({ code: 0 });
    const old = (await a.trigger('newest')).jobIds[0]!;
    await jobsA.waitFor(old, (j) => j.state === JobState.JOB_STATE_RUNNING, 20_000);
    const next = cli(['schedules', 'trigger', 'newest'], tokenA);
    expect(next.code, next.out).toBe(0);
    expect((await jobsA.waitDone(old, 20_000)).state).toBe(JobState.JOB_STATE_CANCELLED);
    const shown = cli(['schedules', 'get', 'newest'], tokenA).out;
    expect(shown).toContain(`cancelled ${old}`);
    expect(shown).toMatch(/next ticks: +\d{4}-01-01T00:00:00\.000Z, /);
    for (const id of [first.jobIds[0]!, next.out.trim()]) await jobsA.cancel(id);
  });

  it('is NOT_FOUND for another tenant, and refuses a bad pattern naming cron', async () => {
    expect(cli(['schedules', 'get', 'slow'], tokenB)).toMatchObject({
      code: 1,
      out: expect.stringContaining('schedule slow not found') as unknown,
    });
    const b = new ScheduleClient(server.address, tokenB);
    await expect(b.trigger('slow', 'a')).rejects.toMatchObject({ code: status.NOT_FOUND, details: 'schedule slow not found' });
    expect((await b.list('a')).length + (await b.list()).length).toBe(0);
    b.close();
    const bad = cli(['schedules', 'create', 'bad', '--cron', '61 * * * *', '--', 'true'], tokenA);
    expect(bad.code).toBe(1);
    expect(bad.out).toContain('spec.cron: "61 * * * *"');
    const wrong = join(dir, 'wrong.yaml');
    await writeFile(wrong, 'command: [make]\nschedule:\n  cron: "* * * * *"\n  colour: red\n');
    expect(cli(['schedules', 'create', 'wrong', '-f', wrong], tokenA)).toEqual({
      code: 2,
      out: `runmesh: ${wrong}: schedule.colour: line 4: unknown key "colour" (cron, timezone, overlap, missed, missed_after)\n`,
    });
  });
});

describe('a template', () => {
  it('is filled in on the server: submit --template, missing and unknown parameters named, and from a schedule', async () => {
    const file = join(dir, 'build.yaml');
    await writeFile(
      file,
      'params:\n  sha: {required: true}\n  greeting: {default: hello}\nname: build-${{ params.sha }}\nscript: echo "${{ params.greeting }} ${{ params.sha }}"\n',
    );
    expect(cli(['templates', 'create', 'build', '-f', file], tokenA)).toEqual({
      code: 0,
      out: 'template a/build stored (job, parameters: sha (required), greeting=hello)\n',
    });
    const run = cli(['submit', '--template', 'build', '--param', 'sha=abc123', '--wait'], tokenA);
    expect(run).toEqual({ code: 0, out: 'hello abc123\n' });
    const missing = cli(['submit', '--template', 'build'], tokenA);
    expect(missing.code).toBe(1);
    expect(missing.out).toContain('params.sha: required by template build and not given');
    expect(cli(['submit', '--template', 'build', '--param', 'sha=1', '--param', 'colour=red'], tokenA).out).toContain(
      'params.colour: template build has no parameter colour',
    );
    expect(cli(['templates', 'get', 'build'], tokenB).out).toContain('template build not found');
    await a.create({ name: 'from-template', cron: '0 0 1 1 *', template: 'build', params: { sha: 'fff' } });
    const [id] = (await a.trigger('from-template')).jobIds;
    const job: Job = await jobsA.waitDone(id!, 20_000);
    expect(job).toMatchObject({ schedule: 'from-template', spec: { name: 'build-fff' } });
    expect((await jobsA.logs(id!)).stdout).toBe('hello fff\n');
    expect(cli(['jobs', 'get', id!], tokenA).out).toMatch(/\nschedule: +from-template, tick \d{4}-/);
    // Its template deleted, a tick starts nothing and its run says why.
    await a.create({
      name: 'orphan',
      cron: '* * * * * *',
      overlap: OverlapPolicy.OVERLAP_POLICY_QUEUE,
      template: 'build',
      params: { sha: '1' },
    });
    expect(cli(['templates', 'rm', 'build'], tokenA)).toEqual({ code: 0, out: 'template build deleted\n' });
    await waitUntil(async () => (await a.get('orphan')).runs.some((r) => r.note === 'not started: template build not found in tenant a'), {
      what: 'a tick of orphan not started',
      timeoutMs: 10_000,
    });
    await a.pause('orphan');
    // A pipeline template: submitted as one pipeline, its needs honoured.
    const ci = join(dir, 'ci.yaml');
    await writeFile(
      ci,
      'params: {ref: {default: main}}\njobs:\n  build: {script: "echo built ${{ params.ref }}"}\n  test: {command: ["true"], needs: [build]}\n',
    );
    expect(cli(['templates', 'create', 'ci', '-f', ci], tokenA).code).toBe(0);
    const ids = cli(['submit', '--template', 'ci', '--param', 'ref=v2'], tokenA).out.trim().split('\n');
    const [build, test] = await Promise.all(ids.map((j) => jobsA.waitDone(j, 20_000)));
    expect([build!.spec?.name, test!.spec?.name, test!.pipelineId]).toEqual(['build', 'test', build!.pipelineId]);
    expect([build!.state, test!.state]).toEqual([JobState.JOB_STATE_SUCCEEDED, JobState.JOB_STATE_SUCCEEDED]);
    expect((await jobsA.logs(build!.id)).stdout).toBe('built v2\n');
  });
});
