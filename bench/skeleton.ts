/**
 * The least a durable control plane on etcd must do per no-op job, and
 * nothing else, as its own process: `node dist/bench/skeleton.js <etcd url>`.
 * The bench drives it exactly as it drives runmesh (the same simulated
 * agents and SubmitBatch calls), so its jobs/s is a ceiling no design with
 * these parts can pass on this machine:
 * - SubmitBatch: one durable put per job (group-committed), then answer;
 * - placement: the next free slot in turn, one durable put, then Assign;
 * - JobResult: one durable put, then ResultAck, and the slot is free again.
 * It has no scheduler, no fencing compares, no watch, no validation, no job
 * state beyond a queue, and writes ready-made values of the sizes runmesh's
 * records have at those three points (so encoding costs it nothing).
 *
 * With `--shared-keys`, each of those puts holds every job that reached that
 * point in the same turn of the event loop (a submit batch's chunk, a round
 * of placements, the results that arrived together) instead of one key per
 * job: what a log-structured job store would pay etcd, for comparison.
 */
import { Server, ServerCredentials, type ServerDuplexStream, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { pino } from 'pino';
import { AgentServiceService, type ConnectRequest, type ConnectResponse } from '../proto/gen/runmesh/v1/agent.js';
import { JobServiceService, JobSpec, JobState, type SubmitBatchRequest, type SubmitBatchResponse } from '../proto/gen/runmesh/v1/job.js';
import { assign, finish } from '../control-plane/jobs/lifecycle.js';
import { encodeRecord, queuedRecord } from '../control-plane/jobs/record.js';
import { validateSpec } from '../control-plane/jobs/validate.js';
import { openEtcdStore } from '../control-plane/store/etcd.js';
import { withGroupCommit } from '../control-plane/store/group-commit.js';
import type { Op, Store } from '../control-plane/store/store.js';

/** The bytes of a no-op job's record as runmesh stores it when queued, assigned and succeeded (made by runmesh's own code once, at start). */
function recordBytes(): Record<Point, number> {
  const now = new Date();
  const r = queuedRecord('01KBQ0000000000000000000000', validateSpec(JobSpec.fromPartial({ argv: ['true'] })), now, 1);
  const queued = encodeRecord(r).length;
  assign(r, 'tp-10', now);
  const assigned = encodeRecord(r).length;
  const at = now.toISOString();
  finish(r, 1, { exitCode: 0, failure: 0, message: '', logRecords: 0, startedAt: at, finishedAt: at }, now);
  return { queued, assigned, finished: encodeRecord(r).length };
}

type Point = 'queued' | 'assigned' | 'finished';

/** At most this many jobs in one shared key (etcd refuses requests over 1.5 MiB). */
const JOBS_PER_SHARED_KEY = 256;

interface Slot {
  call: ServerDuplexStream<ConnectRequest, ConnectResponse>;
  free: number;
}

class Skeleton {
  private readonly queue: { id: string; spec: JobSpec | undefined }[] = [];
  private readonly agents: Slot[] = [];
  private next = 0;
  private ids = 0;
  private readonly values: Record<Point, string>;
  private readonly pending = new Map<Point, { ids: string[]; done: Promise<unknown> }>();

  constructor(
    private readonly store: Store,
    private readonly sharedKeys: boolean,
  ) {
    const bytes = recordBytes();
    this.values = { queued: 'q'.repeat(bytes.queued), assigned: 'a'.repeat(bytes.assigned), finished: 'f'.repeat(bytes.finished) };
  }

  /** Durably records that job `id` reached `point`: its own key, or one shared with this turn's others. */
  private put(id: string, point: Point): Promise<unknown> {
    if (!this.sharedKeys) return this.store.txn({ success: [{ type: 'put', key: `/jobs/${id}`, value: this.values[point] }] });
    const open = this.pending.get(point);
    if (open && open.ids.length < JOBS_PER_SHARED_KEY) {
      open.ids.push(id);
      return open.done;
    }
    const ids = [id];
    const done = new Promise<void>((r) => setImmediate(r)).then(() => {
      if (this.pending.get(point)?.ids === ids) this.pending.delete(point);
      return this.store.txn({ success: [{ type: 'put', key: `/log/${point}/${id}`, value: this.values[point].repeat(ids.length) }] });
    });
    this.pending.set(point, { ids, done });
    return done;
  }

  async submitBatch(req: SubmitBatchRequest): Promise<SubmitBatchResponse> {
    const jobs = req.specs.map((spec) => ({ id: `sk-${process.pid}-${++this.ids}`, spec }));
    if (this.sharedKeys) await Promise.all(jobs.map((j) => this.put(j.id, 'queued')));
    else {
      const ops: Op[] = jobs.map((j) => ({ type: 'put', key: `/jobs/${j.id}`, value: this.values.queued }));
      const step = this.store.maxTxnOps;
      const txns = [];
      for (let i = 0; i < ops.length; i += step) txns.push(this.store.txn({ success: ops.slice(i, i + step) }));
      await Promise.all(txns);
    }
    this.queue.push(...jobs);
    this.place();
    return {
      jobs: jobs.map((j) => ({
        id: j.id,
        spec: undefined,
        state: JobState.JOB_STATE_QUEUED,
        attempt: 0,
        attempts: [],
        timeline: [],
        createdAt: undefined,
        updatedAt: undefined,
        waitingReason: '',
        notBefore: undefined,
        exitCode: 0,
        failure: 0,
        avoidedAgents: [],
        redrives: 0,
        sequenceStart: 0,
        progress: undefined,
        annotations: [],
        traceParent: '',
        schedule: '',
        scheduledAt: undefined,
        waitingOnGroup: '',
        supersededBy: '',
        pipelineId: '',
      })),
    };
  }

  connect(call: ServerDuplexStream<ConnectRequest, ConnectResponse>): void {
    let slot: Slot | undefined;
    call.on('error', () => undefined);
    call.on('end', () => {
      if (slot) this.agents.splice(this.agents.indexOf(slot), 1);
      call.end();
    });
    call.on('data', (m: ConnectRequest) => {
      const msg = m.msg;
      if (msg?.$case === 'hello') {
        slot = { call, free: msg.value.capacity?.slots ?? 1 };
        this.agents.push(slot);
        call.write({
          msg: {
            $case: 'welcome',
            value: {
              sessionId: msg.value.name,
              heartbeatIntervalMs: 2000,
              credential: '',
              resume: [],
              abandon: [],
            },
          },
        });
        this.place();
      } else if (msg?.$case === 'jobResult' && slot) {
        const { jobId, attempt } = msg.value;
        const owner = slot;
        void this.put(jobId, 'finished').then(() => {
          call.write({ msg: { $case: 'resultAck', value: { jobId, attempt } } });
          owner.free++;
          this.place();
        });
      }
    });
  }

  /** Hands queued jobs to free slots, agents in turn. */
  private place(): void {
    while (this.queue.length > 0) {
      const slot = this.freeSlot();
      if (!slot) return;
      const job = this.queue.shift()!;
      slot.free--;
      void this.put(job.id, 'assigned').then(() =>
        slot.call.write({
          msg: {
            $case: 'assign',
            value: {
              jobId: job.id,
              attempt: 1,
              spec: job.spec,
              deadline: undefined,
              jobToken: '',
              secretEnv: {},
              secretFiles: [],
              traceParent: '',
              traceState: '',
            },
          },
        }),
      );
    }
  }

  private freeSlot(): Slot | undefined {
    for (let i = 0; i < this.agents.length; i++) {
      const a = this.agents[(this.next + i) % this.agents.length]!;
      if (a.free > 0) {
        this.next = (this.next + i + 1) % this.agents.length;
        return a;
      }
    }
    return undefined;
  }
}

async function main(): Promise<void> {
  const [endpoint, flag] = process.argv.slice(2);
  if (!endpoint || (flag !== undefined && flag !== '--shared-keys'))
    throw new Error('usage: skeleton.js <etcd client url> [--shared-keys]');
  const store = withGroupCommit(await openEtcdStore({ endpoints: [endpoint], prefix: '/skeleton', logger: pino({ level: 'silent' }) }));
  const sk = new Skeleton(store, flag === '--shared-keys');
  const server = new Server();
  server.addService(JobServiceService, {
    submitBatch: (call: ServerUnaryCall<SubmitBatchRequest, SubmitBatchResponse>, cb: sendUnaryData<SubmitBatchResponse>) =>
      void sk.submitBatch(call.request).then(
        (r) => cb(null, r),
        (err: Error) => cb(err),
      ),
  });
  server.addService(AgentServiceService, { connect: (call: ServerDuplexStream<ConnectRequest, ConnectResponse>) => sk.connect(call) });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  process.stdout.write(`skeleton listening 127.0.0.1:${port}\n`);
  process.on('SIGTERM', () => {
    server.forceShutdown();
    void store.close().finally(() => process.exit(0));
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`skeleton failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
