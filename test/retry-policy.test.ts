/**
 * Retry policies and dead letters (issue 20), on three `runmesh server` peers
 * sharing a real etcd: a job's own backoff and retry_on, its queue timeout
 * held across a leader kill, host exclusion, and re-driving dead jobs with
 * `runmesh jobs retry` (and bulk cancels) from the real CLI.
 */
import { status, type ServiceError } from '@grpc/grpc-js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Assign } from '../proto/gen/runmesh/v1/agent.js';
import { FailureCategory, Job, JobState, ListRequest } from '../proto/gen/runmesh/v1/job.js';
import { adminToken, bigintSafe } from './support/client.js';
import { startEtcd, type TestEtcd } from './support/etcd.js';
import { startPeers, waitLeader, type MeshPeer } from './support/mesh.js';
import { run, startAgent, stopAll, tempDir, TOKEN } from './support/processes.js';
import { simAgent, type SimAgent } from './support/sim-agent.js';
import { waitUntil } from './support/wait.js';

const S = JobState;
const F = FailureCategory;

let etcd: TestEtcd;
let peers: MeshPeer[];
/** A peer that is not the first leader: agents are homed on it and clients talk to it. */
let home: MeshPeer;
let leader: MeshPeer;
let dir: string;
const sims: SimAgent[] = [];

beforeAll(async () => {
  etcd = await startEtcd();
  peers = await startPeers(etcd, 'rp', 3);
  const first = await waitLeader(peers[0]!.client);
  leader = peers.find((p) => p.id === first)!;
  home = peers.find((p) => p !== leader)!;
  dir = await tempDir('runmesh-retry-policy-');
  // The real agent runs the scripted jobs; the other peers follow as fallbacks.
  const servers = [home, ...peers.filter((p) => p !== home)].map((p) => p.address).join(',');
  await startAgent(servers, { name: 'rp-real', slots: 2, labels: 'kind=real' });
  await home.client.waitAgents(1);
}, 60_000);

afterAll(async () => {
  for (const s of sims) s.close();
  for (const p of peers ?? []) p.client.close();
  await stopAll();
  await etcd?.stop();
});

const done = (id: string, timeoutMs = 20_000): Promise<Job> => home.client.waitDone(id, timeoutMs);
const show = (j: Job): string => JSON.stringify(Job.toJSON(j), bigintSafe);

describe('a retry policy and a queue timeout', () => {
  it("drive the job's backoff and which failures retry, and hold across a leader kill", async () => {
    const c = home.client;
    const mark = join(dir, 'fixed');
    const policy = { maxAttempts: 2, retryOn: ['exit:3'], retryBackoffMinMs: 3000, retryBackoffMaxMs: 3000 };
    const retried = await c.submit({ name: 'rp-dead', script: `test -f ${mark} || exit 3`, selector: 'kind=real', ...policy });
    const notNamed = await c.submit({ name: 'rp-other', script: 'exit 4', selector: 'kind=real', ...policy });
    const stuck = await c.submit({ name: 'rp-stuck', argv: ['true'], selector: 'pool=none', queueTimeoutSeconds: 3 });

    // The failure retry_on names waits the job's own backoff (fixed at 3 s here), to the millisecond.
    const waiting = await c.waitFor(retried.id, (j) => j.state === S.JOB_STATE_WAITING, 10_000);
    const entered = waiting.timeline.findLast((e) => e.state === S.JOB_STATE_WAITING)!;
    expect(Date.parse(waiting.notBefore!) - Date.parse(entered.at!)).toBe(3000);

    // The leader dies during the backoff and before the queue timeout: the next one keeps both from the records.
    await leader.kill9();
    await waitLeader(c, leader.id);

    const dead = await done(retried.id);
    expect({ state: dead.state, attempts: dead.attempts.map((a) => a.exitCode) }, show(dead)).toEqual({
      state: S.JOB_STATE_DEAD,
      attempts: [3, 3],
    });
    // exit 4 is not in retry_on: failed at once, its second attempt unused.
    const other = await done(notNamed.id);
    expect({ state: other.state, attempts: other.attempts.length }, show(other)).toEqual({ state: S.JOB_STATE_FAILED, attempts: 1 });
    const timedOut = await done(stuck.id);
    expect({ state: timedOut.state, failure: timedOut.failure, attempts: timedOut.attempts.length }, show(timedOut)).toEqual({
      state: S.JOB_STATE_TIMED_OUT,
      failure: F.FAILURE_CATEGORY_QUEUE_TIMEOUT,
      attempts: 0,
    });
    expect(timedOut.timeline.at(-1)?.reason).toMatch(/queue timeout: no agent took it within 3s/);
  }, 40_000);

  it('refuses a retry_on entry it does not know, naming it', async () => {
    const err = (await home.client
      .submit({ argv: ['true'], retryOn: ['agent_lost', 'agent_lots'] })
      .catch((e: unknown) => e)) as ServiceError;
    expect({ code: err.code, details: err.details }).toEqual({
      code: status.INVALID_ARGUMENT,
      details: expect.stringMatching(/^spec\.retry_on\[1\]: unknown failure category "agent_lots"/) as unknown,
    });
  });
});

/** Runs the built CLI against `home` as admin; resolves with its exit code and output. */
async function cli(...args: string[]): Promise<{ code: number | null; out: string }> {
  const token = adminToken(...peers.map((p) => p.dataDir));
  const p = run([...args, '--server', home.address, '--token', token], { RUNMESH_CONFIG: join(dir, 'no-config.json') });
  const code = await p.stop('SIGCONT', 15_000);
  return { code, out: p.output() };
}

describe('dead letters', () => {
  it('lists dead jobs, re-drives them in bulk after a dry-run count, keeping their history, and cancels in bulk', async () => {
    const c = home.client;
    const [dead] = await listDead();
    expect(dead?.spec?.name).toBe('rp-dead');

    const ls = await cli('jobs', 'ls', '--state', 'dead', '--json');
    expect(ls.code, ls.out).toBe(0);
    expect(ls.out).toContain(dead!.id);

    const dry = await cli('jobs', 'retry', '--filter', 'state=dead,name-prefix=rp-dead');
    expect({ code: dry.code, out: dry.out.trim() }).toEqual({ code: 0, out: 'would retry 1 job; run again with --yes' });
    expect((await c.get(dead!.id)).state).toBe(S.JOB_STATE_DEAD);

    writeFileSync(join(dir, 'fixed'), 'the fix is in\n');
    const act = await cli('jobs', 'retry', '--filter', 'state=dead,name-prefix=rp-dead', '--yes', '--reason', 'fixed upstream');
    expect(act.code, act.out).toBe(0);
    expect(act.out).toContain('retried 1 job');

    const again = await done(dead!.id);
    expect(
      {
        state: again.state,
        attempts: again.attempts.map((a) => [a.number, a.exitCode]),
        sequenceStart: again.sequenceStart,
        redrives: again.redrives,
      },
      show(again),
    ).toEqual({
      state: S.JOB_STATE_SUCCEEDED,
      attempts: [
        [1, 3],
        [2, 3],
        [3, 0],
      ],
      sequenceStart: 3,
      redrives: 1,
    });
    expect(again.timeline.map((e) => e.reason)).toContainEqual(expect.stringMatching(/^retried by .*: fixed upstream$/));

    // A job that succeeded is not a dead letter.
    const refused = (await c.retry(again.id).catch((e: unknown) => e)) as ServiceError;
    expect({ code: refused.code, details: refused.details }).toEqual({
      code: status.FAILED_PRECONDITION,
      details: `job ${again.id} is succeeded: only a failed, dead, timed-out or cancelled job can be retried`,
    });

    const queued = await Promise.all([1, 2].map((i) => c.submit({ name: `rp-q-${i}`, argv: ['true'], selector: 'pool=none' })));
    const count = await cli('jobs', 'cancel', '--filter', 'name-prefix=rp-q-');
    expect(count.out.trim()).toBe('would cancel 2 jobs; run again with --yes');
    const cancel = await cli('jobs', 'cancel', '--filter', 'name-prefix=rp-q-', '--yes', '--json');
    expect(cancel.code, cancel.out).toBe(0);
    for (const j of queued) expect((await c.get(j.id)).state).toBe(S.JOB_STATE_CANCELLED);
  }, 30_000);
});

async function listDead(): Promise<Job[]> {
  return new Promise((resolve, reject) =>
    home.client.jobs.list(ListRequest.fromPartial({ states: [S.JOB_STATE_DEAD], namePrefix: 'rp-', pageSize: 10 }), (err, res) =>
      err ? reject(err) : resolve(res.jobs),
    ),
  );
}

describe('host exclusion', () => {
  it('keeps a retried attempt off the agent where the job failed for an infrastructure reason, waiting for another', async () => {
    const held: Assign[] = [];
    // `flaky` cannot start anything; `steady` holds its one slot until told.
    const flaky = simAgent(home.address, {
      name: 'rp-flaky',
      token: TOKEN,
      slots: 1,
      labels: { pool: 'sim' },
      outcome: () => ({ exitCode: -1, failure: F.FAILURE_CATEGORY_COULD_NOT_START, message: 'could not create the workspace' }),
    });
    const steady = simAgent(home.address, {
      name: 'rp-steady',
      token: TOKEN,
      slots: 1,
      labels: { pool: 'sim', steady: 'yes' },
      // An Assign sent again (no word from an agent for 5 s) is the same attempt: kept once.
      complete: (a) => (held.some((h) => h.jobId === a.jobId && h.attempt === a.attempt) || held.push(a), false),
    });
    sims.push(flaky, steady);
    await Promise.all([flaky.welcomed, steady.welcomed]);
    const c = home.client;
    const blocker = await c.submit({ argv: ['true'], selector: 'steady=yes' });
    const heldOf = (id: string): Assign | undefined => held.find((a) => a.jobId === id);
    await waitUntil(() => heldOf(blocker.id), { what: 'the blocker assigned to rp-steady' });

    const job = await c.submit({ argv: ['true'], selector: 'pool=sim', maxAttempts: 3, retryBackoffMinMs: 100, retryBackoffMaxMs: 100 });
    // Its first attempt could only go to rp-flaky; the retry waits for rp-steady, though rp-flaky is free.
    const waiting = await waitUntil(
      async () => {
        const answers = await Promise.all(peers.filter((p) => p.alive()).map((p) => p.client.get(job.id).catch(() => undefined)));
        return answers.find((j) => j?.state === S.JOB_STATE_QUEUED && j.waitingReason.includes('avoiding rp-flaky'));
      },
      { what: 'the retry waiting for another agent than rp-flaky', timeoutMs: 10_000 },
    );
    expect(waiting.avoidedAgents).toEqual(['rp-flaky']);

    steady.finish(heldOf(blocker.id)!);
    steady.finish(await waitUntil(() => heldOf(job.id), { what: 'the retry assigned to rp-steady' }));
    const ended = await done(job.id);
    expect(
      ended.attempts.map((a) => [a.agent, a.failure]),
      show(ended),
    ).toEqual([
      ['rp-flaky', F.FAILURE_CATEGORY_COULD_NOT_START],
      ['rp-steady', F.FAILURE_CATEGORY_UNSPECIFIED],
    ]);
    expect((await done(blocker.id)).state).toBe(S.JOB_STATE_SUCCEEDED);
  }, 20_000);
});
