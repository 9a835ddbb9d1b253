/**
 * control-plane/metrics: one peer's Prometheus metrics, in a registry of its
 * own (no globals: two peers in one process each have theirs). Built first,
 * before the store, so the store's commits, the gRPC server's calls and the
 * job tracker's transitions can feed it; `serve` adds the scrape-time gauges
 * once the parts they read exist and returns the /metrics route.
 *
 * - job-timings.ts: submit → assign / running, queue wait, run duration.
 * - grpc-calls.ts: calls by method and code, auth failures, rate limiting.
 * - cluster-gauges.ts: queues, agents, leadership, backlog per label set.
 */
import type { ServerInterceptor } from '@grpc/grpc-js';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ClusterServiceImpl } from '../api/cluster-service.js';
import type { HousekeepingStats } from '../housekeeping.js';
import type { JobTracker } from '../jobs/tracker.js';
import { isTerminal, stateName } from '../jobs/state.js';
import type { Route } from '../http/http-server.js';
import type { CommitObserver } from '../store/commit-observer.js';
import type { QueuedJob } from '../../routing/index.js';
import { addClusterGauges, addHousekeepingMetrics, type ScrapeState } from './cluster-gauges.js';
import { grpcCallMetrics } from './grpc-calls.js';
import { JobTimings } from './job-timings.js';

/** Seconds from a submit to a job's assignment or start: the dispatch path, milliseconds to an hour. */
const WAIT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];
const RUN_BUCKETS = [0.1, 0.5, 1, 5, 10, 30, 60, 300, 600, 1800, 3600, 7200, 21600];
const STORE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256];
const GRPC_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600];

/** What the scrape-time gauges read, once the peer's parts exist. */
export interface MetricSources {
  tracker: JobTracker;
  cluster: Pick<ClusterServiceImpl, 'status'>;
  housekeeping?: HousekeepingStats;
  /** Queued jobs as the scheduler's index holds them (every peer keeps one). */
  queued(): Iterable<QueuedJob>;
  /** Agent streams open on this peer. */
  agentStreams(): number;
  isLeader(): boolean;
}

export class ControlPlaneMetrics {
  readonly registry = new Registry();
  /** The gRPC servers' first interceptor (see grpc-calls.ts). */
  readonly grpcCalls: ServerInterceptor;
  private readonly storeSeconds: Histogram<'store'>;
  private readonly storeBatch: Histogram<'store'>;
  private readonly storeFailures: Counter<'store'>;
  private readonly artifactFiles: Counter;
  private readonly artifactBytes: Counter;

  constructor() {
    // prom-client names its defaults process_* and nodejs_*: the prefix makes them runmesh_process_*, runmesh_nodejs_*.
    collectDefaultMetrics({ register: this.registry, prefix: 'runmesh_' });
    const registers = [this.registry];
    this.grpcCalls = grpcCallMetrics({
      handling: new Histogram({
        name: 'runmesh_grpc_server_handling_seconds',
        help: 'gRPC calls served, by method and status code: time from the call to its status (a stream: its life)',
        labelNames: ['method', 'code'],
        buckets: GRPC_BUCKETS,
        registers,
      }),
      authFailures: new Counter({
        name: 'runmesh_auth_failures_total',
        help: 'gRPC calls refused UNAUTHENTICATED, by service',
        labelNames: ['service'],
        registers,
      }),
      rateLimited: new Counter({
        name: 'runmesh_rate_limited_total',
        help: 'gRPC calls refused for a rate limit (per token, per tenant, or failed authentications from an address), by method',
        labelNames: ['method'],
        registers,
      }),
    });
    this.storeSeconds = new Histogram({
      name: 'runmesh_store_txn_seconds',
      help: 'Store writes: an embedded commit (lmdb transaction and sync) or an etcd Txn round trip',
      labelNames: ['store'],
      buckets: STORE_BUCKETS,
      registers,
    });
    this.storeBatch = new Histogram({
      name: 'runmesh_store_txn_batch_size',
      help: 'Transactions carried by one store write (group commit)',
      labelNames: ['store'],
      buckets: BATCH_BUCKETS,
      registers,
    });
    this.storeFailures = new Counter({
      name: 'runmesh_store_txn_failures_total',
      help: 'Store writes that failed (an error, or a merged etcd txn whose compares did not all hold, re-run one by one)',
      labelNames: ['store'],
      registers,
    });
    this.artifactFiles = new Counter({
      name: 'runmesh_artifact_files_stored_total',
      help: "Artifact files agents uploaded to this peer and it stored (committed); refused uploads are AgentService calls' codes",
      registers,
    });
    this.artifactBytes = new Counter({
      name: 'runmesh_artifact_stored_bytes_total',
      help: 'Bytes of the artifact files counted by runmesh_artifact_files_stored_total',
      registers,
    });
  }

  /** An attempt's artifacts were stored on this peer (its agent's upload, committed). */
  artifactsStored(files: number, bytes: number): void {
    this.artifactFiles.inc(files);
    this.artifactBytes.inc(bytes);
  }

  /** The observer to open the store with. */
  storeCommits(store: 'embedded' | 'etcd'): CommitObserver {
    const seconds = this.storeSeconds.labels({ store });
    const batch = this.storeBatch.labels({ store });
    const failures = this.storeFailures.labels({ store });
    return (c) => {
      seconds.observe(c.seconds);
      batch.observe(c.txns);
      if (!c.ok) failures.inc();
    };
  }

  /** Adds what reads the peer's live state; returns the /metrics route and what stops the job listeners. */
  serve(s: MetricSources): { route: Route; close(): void } {
    const registers = [this.registry];
    let state: ScrapeState | undefined;
    addClusterGauges(this.registry, () => (state ??= scrape(s)));
    if (s.housekeeping) addHousekeepingMetrics(this.registry, s.housekeeping);
    const finished = new Counter({
      name: 'runmesh_jobs_finished_total',
      help: 'Jobs that reached a final state',
      labelNames: ['state'],
      registers,
    });
    const unsubscribe = s.tracker.subscribe((v) => {
      const st = v.record.job.state;
      if (isTerminal(st)) finished.inc({ state: stateName(st) });
    });
    const timings = new JobTimings(s.tracker, jobInstruments(this.registry), () => s.isLeader());
    return {
      route: async (_req, res) => {
        state = undefined; // one reading of the live state per scrape, shared by every gauge
        const body = await this.registry.metrics();
        state = undefined;
        res.writeHead(200, { 'content-type': this.registry.contentType }).end(body);
      },
      close: () => {
        unsubscribe();
        timings.close();
      },
    };
  }
}

function scrape(s: MetricSources): ScrapeState {
  const queued = [...s.queued()];
  return {
    status: s.cluster.status(),
    queued,
    queuedAt: (id) => {
      const job = s.tracker.get(id)?.record.job;
      const at = job?.timeline.at(-1)?.at ?? job?.createdAt;
      return at ? Date.parse(at) : undefined;
    },
    agentStreams: s.agentStreams(),
    isLeader: s.isLeader(),
    now: Date.now(),
  };
}

function jobInstruments(registry: Registry): ConstructorParameters<typeof JobTimings>[1] {
  const registers = [registry];
  const hist = <L extends string>(name: string, help: string, labelNames: L[], buckets: number[]): Histogram<L> =>
    new Histogram<L>({ name, help, labelNames, buckets, registers });
  const observed = '; observed on the leader, so a sum over peers counts each job once';
  return {
    submitToAssign: hist(
      'runmesh_job_submit_to_assign_seconds',
      `Submit to first assignment, by QoS class${observed}`,
      ['qos'],
      WAIT_BUCKETS,
    ),
    submitToRunning: hist(
      'runmesh_job_submit_to_running_seconds',
      `Submit to first attempt running, by QoS class${observed}`,
      ['qos'],
      WAIT_BUCKETS,
    ),
    queueWait: hist(
      'runmesh_job_queue_wait_seconds',
      `Time each attempt waited queued before its assignment, by QoS class${observed}`,
      ['qos'],
      WAIT_BUCKETS,
    ),
    runDuration: hist(
      'runmesh_job_run_duration_seconds',
      `Attempts from started to finished, by QoS class and end state${observed}`,
      ['qos', 'state'],
      RUN_BUCKETS,
    ),
    agentLostAttempts: new Counter({
      name: 'runmesh_agent_lost_attempts_total',
      help: `Attempts ended because their agent was lost (silent past the heartbeat timeout)${observed}`,
      registers,
    }),
  };
}
