/**
 * Trivial jobs under batch load (issue 16, fault 8: "a trivial job is
 * sometimes reported lost"): `n` jobs (`true` and `date`, alternately)
 * submitted with SubmitBatch, `batch` at a time, keeping up to `backlog`
 * unfinished, through `clients` in turn; every job is read to its end and
 * every attempt that ended agent-lost is counted and described.
 */
import type { ServiceError } from '@grpc/grpc-js';
import { FailureCategory, JobState, type Job, type JobSpec } from '../../proto/gen/runmesh/v1/job.js';
import { TERMINAL, type TestClient } from '../support/client.js';
import { describeJob, inBatches } from '../support/mesh.js';
import { sleep } from '../support/wait.js';

export interface BatchLoad {
  jobs: number;
  /** Jobs that did not succeed. */
  failed: number;
  /** Attempts recorded agent-lost, retried or not. */
  lostAttempts: number;
  /** Jobs with more than one attempt. */
  retried: number;
  seconds: number;
  /** A few of the jobs that did not succeed or lost an attempt, described. */
  examples: string[];
}

export async function batchLoad(
  clients: TestClient[],
  o: { n: number; batch?: number; backlog?: number; timeoutMs: number },
): Promise<BatchLoad> {
  const batch = o.batch ?? 100;
  const backlog = o.backlog ?? 400;
  const started = Date.now();
  const until = started + o.timeoutMs;
  const pending = new Set<string>();
  const done: Job[] = [];
  let submitted = 0;
  for (let turn = 0; done.length < o.n; turn++) {
    if (Date.now() > until) throw new Error(`batch load: ${done.length} of ${o.n} jobs done after ${o.timeoutMs} ms`);
    while (submitted < o.n && pending.size < backlog) {
      const count = Math.min(batch, o.n - submitted);
      const specs = Array.from({ length: count }, (_, i) =>
        clients[0]!.spec({ argv: (submitted + i) % 2 === 0 ? ['true'] : ['date'], maxAttempts: 1 }),
      );
      const jobs = await submitBatch(clients[turn % clients.length]!, specs);
      for (const j of jobs) pending.add(j.id);
      submitted += count;
    }
    await sleep(200); // deliberate: a poll of the backlog
    await inBatches([...pending], 50, async (id, i) => {
      const job = await clients[(turn + i) % clients.length]!.get(id).catch(() => undefined);
      if (job && TERMINAL.has(job.state)) {
        pending.delete(id);
        done.push(job);
      }
    });
  }
  const lost = (j: Job): number => j.attempts.filter((a) => a.failure === FailureCategory.FAILURE_CATEGORY_AGENT_LOST).length;
  const bad = done.filter((j) => j.state !== JobState.JOB_STATE_SUCCEEDED || lost(j) > 0);
  return {
    jobs: done.length,
    failed: done.filter((j) => j.state !== JobState.JOB_STATE_SUCCEEDED).length,
    lostAttempts: done.reduce((sum, j) => sum + lost(j), 0),
    retried: done.filter((j) => j.attempts.length > 1).length,
    seconds: Math.round((Date.now() - started) / 100) / 10,
    examples: bad.slice(0, 5).map((j) => describeJob(j) ?? j.id),
  };
}

function submitBatch(client: TestClient, specs: JobSpec[]): Promise<Job[]> {
  return new Promise((resolve, reject) =>
    client.jobs.submitBatch({ specs }, (err: ServiceError | null, res) => (err ? reject(err) : resolve(res.jobs))),
  );
}
