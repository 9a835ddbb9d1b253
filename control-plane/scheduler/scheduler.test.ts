/**
 * The scheduler on real parts: an embedded store in a temp dir, the job repo,
 * tracker and writer, the router. Only its two narrow interfaces, the agents
 * it may place on and where it sends assignments, are a recording cluster
 * here (as Nomad's scheduler harness records plans): what it placed is read
 * back from the store.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { FailureCategory, JobSpec, JobState } from '../../proto/gen/runmesh/v1/job.js';
import { Router, type AgentView, type Resources } from '../../routing/index.js';
import { tempDir } from '../../test/support/processes.js';
import { sleep, waitUntil } from '../../test/support/wait.js';
import type { JobRecord } from '../jobs/record.js';
import { JobRepo } from '../jobs/repo.js';
import { JobTracker } from '../jobs/tracker.js';
import { validateSpec } from '../jobs/validate.js';
import { JobWriter } from '../jobs/writer.js';
import { openEmbeddedStore } from '../store/embedded.js';
import { ActiveIndex } from './active-index.js';
import { GroupSlots } from '../jobs/group-slots.js';
import { add } from './convert.js';
import { Scheduler, type AgentSource, type Dispatcher } from './scheduler.js';

const log = pino({ level: 'silent' });

/** Agents that come and go, and every assignment the scheduler sends them. */
class RecordingCluster implements AgentSource, Dispatcher {
  private readonly agents = new Map<string, { labels: Record<string, string>; capacity: Resources }>();
  readonly assigned: Array<{ agent: string; jobId: string; attempt: number }> = [];

  connect(name: string, labels: Record<string, string> = {}, slots = 1): void {
    this.agents.set(name, { labels, capacity: { slots, cpuMillis: 0, memoryMb: 0 } });
  }

  disconnect(name: string): void {
    this.agents.delete(name);
  }

  views(index: ActiveIndex): AgentView[] {
    return [...this.agents].map(([name, a]) => ({
      name,
      ...a,
      free: add(a.capacity, index.usageOf(name), -1),
      load: 0,
      schedulable: true,
    }));
  }

  connected(name: string): boolean {
    return this.agents.has(name);
  }

  async assign(agent: string, record: JobRecord): Promise<boolean> {
    this.assigned.push({ agent, jobId: record.job.id, attempt: record.job.attempt });
    return this.connected(agent);
  }

  async cancel(): Promise<boolean> {
    return true;
  }
}

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function harness(o: { isLeader?: () => boolean; agentLostAfterMs?: number } = {}) {
  const store = await openEmbeddedStore({ dir: await tempDir('runmesh-scheduler-') });
  cleanups.push(() => store.close());
  const repo = new JobRepo(store);
  const tracker = new JobTracker(repo, log);
  await tracker.start();
  cleanups.push(() => tracker.close());
  const writer = JobWriter.forAnyPeer({ repo, tracker, logger: log });
  const cluster = new RecordingCluster();
  const scheduler = new Scheduler({
    writer,
    tracker,
    agents: cluster,
    dispatcher: cluster,
    index: new ActiveIndex(),
    router: new Router(),
    logger: log,
    isLeader: o.isLeader,
    agentLostAfterMs: o.agentLostAfterMs ?? 60_000,
    groupSlots: new GroupSlots(store, repo, tracker),
  });
  cleanups.push(() => scheduler.close());
  const draft = (spec: Partial<JobSpec>): JobRecord =>
    repo.draft(validateSpec(JobSpec.fromPartial({ argv: ['true'], ...spec })), new Date());
  /** Stores a job QUEUED, as a submit that the scheduler did not place at once does. */
  const queue = async (spec: Partial<JobSpec> = {}): Promise<string> => (await writer.create([draft(spec)]))[0]!.record.job.id;
  const stored = async (id: string) => (await repo.mustGet(id)).record.job;
  return { repo, cluster, scheduler, draft, queue, stored };
}

describe('Scheduler', () => {
  it('places a queued job on the agent that fits and stores the assignment', async () => {
    const { cluster, scheduler, queue, stored } = await harness();
    cluster.connect('small', { os: 'linux' }, 1);
    cluster.connect('gpu', { os: 'linux', gpu: 'yes' }, 4);
    scheduler.start();
    const id = await queue({ selector: 'gpu=yes' });
    await waitUntil(() => cluster.assigned.find((a) => a.jobId === id), { what: 'the assignment to be sent' });
    expect(cluster.assigned).toEqual([{ agent: 'gpu', jobId: id, attempt: 1 }]);
    const job = await stored(id);
    expect(job.state).toBe(JobState.JOB_STATE_ASSIGNED);
    expect(job.attempts.map((a) => [a.number, a.agent, a.state])).toEqual([[1, 'gpu', JobState.JOB_STATE_ASSIGNED]]);
  });

  it('leaves a job that no agent matches queued, with the reason stored', async () => {
    const { cluster, scheduler, queue, stored } = await harness();
    cluster.connect('linux-1', { os: 'linux' });
    scheduler.start();
    const id = await queue({ selector: 'os=mac' });
    const job = await waitUntil(
      async () => {
        const j = await stored(id);
        return j.waitingReason ? j : undefined;
      },
      {
        what: 'the waiting reason to be stored',
        show: () => scheduler.waitingReason(id),
      },
    );
    expect(job.state).toBe(JobState.JOB_STATE_QUEUED);
    expect(job.waitingReason).toMatch(/^unschedulable: .*os=mac/);
    expect(scheduler.unschedulable()).toEqual([{ jobId: id, reason: job.waitingReason }]);
    expect(cluster.assigned).toEqual([]);
  });

  it('places nothing while not the leader, and places once it leads', async () => {
    let leading = false;
    const { cluster, scheduler, draft, queue, stored } = await harness({ isLeader: () => leading });
    cluster.connect('a', {}, 4);
    scheduler.start();
    const id = await queue();
    // Not the leader, admit stores a new job queued rather than placing it.
    const [admitted] = await scheduler.admit([draft({})]);
    expect(admitted!.record.job.state).toBe(JobState.JOB_STATE_QUEUED);
    await sleep(600); // deliberate: two ticks of the scheduler, in which nothing may be placed
    expect(cluster.assigned).toEqual([]);
    expect((await stored(id)).state).toBe(JobState.JOB_STATE_QUEUED);

    leading = true;
    scheduler.kick(); // as the election's change does
    await waitUntil(() => cluster.assigned.length === 2, { what: 'both jobs placed once leading' });
    expect((await stored(id)).state).toBe(JobState.JOB_STATE_ASSIGNED);
  });

  it('takes the attempts of an agent gone longer than agentLostAfterMs and queues them again', async () => {
    const lostAfter = 300;
    const { cluster, scheduler, queue, stored } = await harness({ agentLostAfterMs: lostAfter });
    cluster.connect('doomed');
    scheduler.start();
    const id = await queue({ maxAttempts: 2 });
    await waitUntil(() => cluster.assigned.length === 1, { what: 'the first placement' });
    cluster.connect('spare');
    cluster.disconnect('doomed');
    const goneAt = Date.now();
    // Lost, retried after its backoff (about 1 s), placed on the agent that is left.
    const job = await waitUntil(
      async () => {
        // The placement is stored first and sent to the agent after: wait for both.
        const j = await stored(id);
        return j.attempts.length === 2 && cluster.assigned.length === 2 ? j : undefined;
      },
      {
        what: 'a second attempt',
        show: () => cluster.assigned,
      },
    );
    const [first, second] = job.attempts;
    expect(first).toMatchObject({ agent: 'doomed', failure: FailureCategory.FAILURE_CATEGORY_AGENT_LOST });
    expect(first!.message).toContain(`agent doomed lost (gone for ${lostAfter} ms)`);
    expect(Date.parse(first!.finishedAt!) - goneAt).toBeGreaterThanOrEqual(lostAfter);
    expect(job.timeline.map((t) => t.state)).toContain(JobState.JOB_STATE_WAITING);
    expect(second).toMatchObject({ agent: 'spare', state: JobState.JOB_STATE_ASSIGNED });
    expect(cluster.assigned.map((a) => [a.agent, a.attempt])).toEqual([
      ['doomed', 1],
      ['spare', 2],
    ]);
  });

  it('stores a job admitted while an agent has room already assigned, in one write; with no room, queued', async () => {
    const { repo, cluster, scheduler, draft, stored } = await harness();
    cluster.connect('one-slot', {}, 1);
    scheduler.start();
    const [placed] = await scheduler.admit([draft({ name: 'fits' })]);
    expect(placed!.record.job.state).toBe(JobState.JOB_STATE_ASSIGNED);
    const id = placed!.record.job.id;
    expect(cluster.assigned).toEqual([{ agent: 'one-slot', jobId: id, attempt: 1 }]);
    const v = await repo.mustGet(id);
    expect(v.modRevision).toBe(placed!.modRevision); // the record as admitted is the only version stored
    expect(v.record.job.timeline.map((t) => t.state)).toEqual([JobState.JOB_STATE_QUEUED, JobState.JOB_STATE_ASSIGNED]);

    const [waits] = await scheduler.admit([draft({ name: 'no room' })]);
    expect(waits!.record.job.state).toBe(JobState.JOB_STATE_QUEUED);
    expect((await stored(waits!.record.job.id)).state).toBe(JobState.JOB_STATE_QUEUED);
    expect(cluster.assigned).toHaveLength(1);
  });
});
