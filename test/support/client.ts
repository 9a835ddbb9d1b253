/** A promise-shaped gRPC client for tests: submit, get, wait for a state, collect logs. */
import { credentials, InterceptingCall, type Interceptor, type ServiceError } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AgentState, ClusterServiceClient, type StatusResponse, type ListAgentsResponse } from '../../proto/gen/runmesh/v1/cluster.js';
import { JobServiceClient, JobSpec, JobState, LogStream, type Job, type LogsResponse } from '../../proto/gen/runmesh/v1/job.js';
import { waitUntil } from './wait.js';

/** A JSON.stringify replacer for messages holding uint64 fields (bigint), such as an attempt's usage. */
export const bigintSafe = (_key: string, value: unknown): unknown => (typeof value === 'bigint' ? String(value) : value);

type Callback<T> = (err: ServiceError | null, res: T) => void;

function call<T>(fn: (cb: Callback<T>) => unknown): Promise<T> {
  return new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res))));
}

/** Adds `authorization: Bearer <token>` to every call. */
export function bearer(token: string): Interceptor {
  return (options, next) =>
    new InterceptingCall(next(options), {
      start(metadata, listener, start) {
        metadata.set('authorization', `Bearer ${token}`);
        start(metadata, listener);
      },
    });
}

/** The admin token a control plane wrote to its data dir on first start; with several (a mesh), whichever peer created it. */
export function adminToken(...dataDirs: string[]): string {
  for (const dir of dataDirs) {
    try {
      return readFileSync(join(dir, 'admin.token'), 'utf8').trim();
    } catch {
      // not this peer: another one created the cluster's token
    }
  }
  throw new Error(`no admin.token in ${dataDirs.join(', ')}`);
}

export const TERMINAL = new Set([
  JobState.JOB_STATE_SUCCEEDED,
  JobState.JOB_STATE_FAILED,
  JobState.JOB_STATE_CANCELLED,
  JobState.JOB_STATE_TIMED_OUT,
  JobState.JOB_STATE_DEAD,
  JobState.JOB_STATE_SKIPPED,
]);

export class TestClient {
  readonly jobs: JobServiceClient;
  readonly cluster: ClusterServiceClient;

  /** `token`: sent as a bearer token with every call (none: calls are anonymous, and refused by a real control plane). */
  constructor(address: string, token?: string) {
    const interceptors = token ? [bearer(token)] : [];
    this.jobs = new JobServiceClient(address, credentials.createInsecure(), { interceptors });
    this.cluster = new ClusterServiceClient(address, credentials.createInsecure(), { interceptors });
  }

  spec(partial: Partial<JobSpec>): JobSpec {
    return JobSpec.fromPartial(partial);
  }

  async submit(partial: Partial<JobSpec>): Promise<Job> {
    const res = await call<{ job?: Job }>((cb) => this.jobs.submit({ spec: this.spec(partial) }, cb));
    return res.job!;
  }

  async get(id: string): Promise<Job> {
    const res = await call<{ job?: Job }>((cb) => this.jobs.get({ id }, cb));
    return res.job!;
  }

  cancel(id: string, reason = 'test'): Promise<unknown> {
    return call((cb) => this.jobs.cancel({ id, reason }, cb));
  }

  /** JobService.Retry: re-drives an ended job; resolves with it queued again. */
  async retry(id: string, reason = 'test'): Promise<Job> {
    const res = await call<{ job?: Job }>((cb) => this.jobs.retry({ id, reason }, cb));
    return res.job!;
  }

  status(): Promise<StatusResponse> {
    return call((cb) => this.cluster.status({}, cb));
  }

  agents(): Promise<ListAgentsResponse> {
    return call((cb) => this.cluster.listAgents({}, cb));
  }

  /** Polls until `pred(job)` holds; fails with the last job seen. */
  async waitFor(id: string, pred: (j: Job) => boolean, timeoutMs = 30_000): Promise<Job> {
    let last: Job | undefined;
    return waitUntil(
      async () => {
        last = await this.get(id).catch(() => last);
        return last && pred(last) && last;
      },
      {
        what: `job ${id} to reach the expected state`,
        timeoutMs,
        intervalMs: 50,
        show: () =>
          `last: ${JSON.stringify(last && { state: JobState[last.state], attempts: last.attempts, waiting: last.waitingReason }, bigintSafe)}`,
      },
    );
  }

  waitDone(id: string, timeoutMs = 30_000): Promise<Job> {
    return this.waitFor(id, (j) => TERMINAL.has(j.state), timeoutMs);
  }

  async waitAgents(n: number, timeoutMs = 15_000): Promise<void> {
    await waitUntil(
      async () => {
        const res = await this.agents().catch(() => undefined);
        return res && res.agents.filter((a) => a.state === AgentState.AGENT_STATE_READY).length >= n;
      },
      { what: `${n} agents to become ready`, timeoutMs, intervalMs: 50 },
    );
  }

  /** The whole output of one attempt (latest by default), per stream. */
  logs(
    id: string,
    o: { attempt?: number; follow?: boolean; fromSeq?: number } = {},
  ): Promise<{ stdout: string; stderr: string; records: LogsResponse[] }> {
    return new Promise((resolve, reject) => {
      const records: LogsResponse[] = [];
      const stream = this.jobs.logs({ id, attempt: o.attempt ?? 0, follow: o.follow ?? false, fromSeq: o.fromSeq ?? 0 });
      stream.on('data', (r: LogsResponse) => records.push(r));
      stream.on('error', reject);
      stream.on('end', () => {
        const text = (s: LogStream): string =>
          Buffer.concat(records.filter((r) => r.stream === s).map((r) => Buffer.from(r.data))).toString();
        resolve({ stdout: text(LogStream.LOG_STREAM_STDOUT), stderr: text(LogStream.LOG_STREAM_STDERR), records });
      });
    });
  }

  close(): void {
    this.jobs.close();
    this.cluster.close();
  }
}
