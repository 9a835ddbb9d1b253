/**
 * What the metrics cost on the dispatch path (issue 19), in-process: a job's
 * life as the tracker reports it (queued, assigned, running, succeeded)
 * through JobTimings' histograms, plus one store commit observation, per
 * job; against the same loop with nothing observing. The gRPC interceptor's
 * share (one histogram observation and a trailer lookup per call) is not
 * measured here; it is of the order of one transition. The figure to compare is the end-to-end
 * job cost the executor bench measures (tens of ms): nanoseconds per job
 * here are negligible next to it.
 */
import { Metadata } from '@grpc/grpc-js';
import { JobState, QosClass, type Job } from '../proto/gen/runmesh/v1/job.js';
import { ControlPlaneMetrics } from '../control-plane/metrics/index.js';
import { JobTimings } from '../control-plane/metrics/job-timings.js';
import { Counter, Histogram, Registry } from 'prom-client';
import { line, round } from './stats.js';

const JOBS = 200_000;

function versions(i: number, now: number): Job[] {
  const at = (ms: number): string => new Date(now + ms).toISOString();
  const base = { id: `job-${i}`, spec: { qos: QosClass.QOS_CLASS_STANDARD }, createdAt: at(0), timeline: [], attempt: 1 } as unknown as Job;
  const attempt = { number: 1, agent: 'a', state: JobState.JOB_STATE_ASSIGNED, assignedAt: at(5) };
  return [
    { ...base, state: JobState.JOB_STATE_ASSIGNED, attempts: [attempt] },
    { ...base, state: JobState.JOB_STATE_RUNNING, attempts: [{ ...attempt, state: JobState.JOB_STATE_RUNNING, startedAt: at(20) }] },
    {
      ...base,
      state: JobState.JOB_STATE_SUCCEEDED,
      attempts: [{ ...attempt, state: JobState.JOB_STATE_SUCCEEDED, startedAt: at(20), finishedAt: at(1020) }],
    },
  ] as Job[];
}

export async function benchMetrics(): Promise<void> {
  const registry = new Registry();
  const h = (name: string, labelNames: string[]): Histogram<string> =>
    new Histogram({ name, help: name, labelNames, registers: [registry] });
  const noTracker = { subscribe: () => () => {}, onDeleted: () => () => {} };
  const timings = new JobTimings(
    noTracker,
    {
      submitToAssign: h('a', ['qos']),
      submitToRunning: h('b', ['qos']),
      queueWait: h('c', ['qos']),
      runDuration: h('d', ['qos', 'state']),
      agentLostAttempts: new Counter({ name: 'e', help: 'e', registers: [registry] }),
    },
    () => true,
  );
  const metrics = new ControlPlaneMetrics();
  const commit = metrics.storeCommits('embedded');
  const now = Date.now() + 1000;
  const jobs = Array.from({ length: JOBS }, (_, i) => versions(i, now));
  const trailers = new Metadata();
  const sink: Job[] = [];
  const bare = time(() => jobs.forEach((vs) => vs.forEach((v) => sink.push(v))));
  sink.length = 0;
  const observed = time(() =>
    jobs.forEach((vs) => {
      for (const v of vs) timings.update(v);
      commit({ seconds: 0.002, txns: 4, ok: true });
      void trailers.get('retry-after-ms');
    }),
  );
  const perJobNs = ((observed - bare) / JOBS) * 1e6;
  line('metrics on the dispatch path', {
    jobs: JOBS,
    'ns/job (3 transitions, 1 commit)': round(perJobNs, 0),
    'of a 45 ms end-to-end job': `${round((perJobNs / 45e6) * 100, 4)}%`,
  });
  timings.close();
}

function time(f: () => void): number {
  const t = process.hrtime.bigint();
  f();
  return Number(process.hrtime.bigint() - t) / 1e6;
}
