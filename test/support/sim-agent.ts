/**
 * A simulated agent for benchmarks and protocol tests: speaks the real
 * protocol over real gRPC (Hello, heartbeats, results) but completes each
 * assignment at once instead of spawning a process.
 */
import { credentials } from '@grpc/grpc-js';
import { AgentServiceClient, type Assign, type ConnectResponse, type JobResult } from '../../proto/gen/runmesh/v1/agent.js';
import { executorLabels, type ExecutorName } from '../../proto/executor-labels.js';
import { PROTOCOL_VERSION } from '../../proto/protocol.js';

export interface SimAgent {
  /** Called with the job id when an Assign arrives (before the result is sent). */
  onAssign?: (jobId: string, at: bigint) => void;
  readonly welcomed: Promise<void>;
  /** The credential its Welcome enrolled it with (set once welcomed). */
  credential: string;
  /** Reports the attempt succeeded (for an Assign that `complete` held back). */
  finish(assign: Assign): void;
  close(): void;
}

export interface SimAgentOptions {
  name: string;
  token: string;
  slots: number;
  /** Shares one channel among several agents. */
  client?: AgentServiceClient;
  onAssign?: (jobId: string, at: bigint) => void;
  /** Called when the control plane acknowledges a result (the job's final write is done). */
  onResultAck?: (jobId: string) => void;
  /** Whether to answer this Assign with a success (default: always). */
  complete?: (assign: Assign) => boolean;
  /** Host load reported in heartbeats (default 0). */
  load?: number;
  /** Heartbeat period (default: what the control plane's Welcome asks for). */
  heartbeatMs?: number;
  /** Labels besides `sim=true`. */
  labels?: Record<string, string>;
  /** Sends this as the job's one stdout record before the result (default: no log). */
  log?: string;
  /** The executors it advertises, as a real agent's labels (default: none, like an agent that predates them). */
  executors?: readonly ExecutorName[];
  /** Its Hello's containment line (default ''). */
  containment?: string;
  /** How each attempt ends (default: exit 0, no failure, no usage). */
  outcome?: (assign: Assign) => Partial<Pick<JobResult, 'exitCode' | 'failure' | 'message' | 'usage'>>;
}

export function simAgent(address: string, o: SimAgentOptions): SimAgent {
  const client = o.client ?? new AgentServiceClient(address, credentials.createInsecure());
  const call = client.connect();
  let resolveWelcome!: () => void;
  const welcomed = new Promise<void>((r) => (resolveWelcome = r));
  const finish = (a: Assign): void => {
    const now = new Date().toISOString();
    if (o.log !== undefined)
      call.write({
        msg: { $case: 'logChunk', value: { jobId: a.jobId, attempt: a.attempt, seq: 0, stream: 1, data: Buffer.from(o.log) } },
      });
    const logRecords = o.log === undefined ? 0 : 1;
    call.write({
      msg: {
        $case: 'jobResult',
        value: {
          jobId: a.jobId,
          attempt: a.attempt,
          exitCode: 0,
          failure: 0,
          message: '',
          usage: undefined,
          artifactsError: '',
          artifactsUnmatched: false,
          ...o.outcome?.(a),
          logRecords,
          startedAt: now,
          finishedAt: now,
        },
      },
    });
  };
  const agent: SimAgent = {
    onAssign: o.onAssign,
    welcomed,
    credential: '',
    finish,
    close: () => {
      clearInterval(hb);
      call.cancel();
      if (!o.client) client.close();
    },
  };
  call.on('error', () => undefined);
  call.on('data', (m: ConnectResponse) => {
    const msg = m.msg;
    if (msg?.$case === 'welcome') {
      beat(o.heartbeatMs ?? (msg.value.heartbeatIntervalMs || 2000));
      agent.credential ||= msg.value.credential;
      resolveWelcome();
    }
    if (msg?.$case === 'resultAck') o.onResultAck?.(msg.value.jobId);
    if (msg?.$case !== 'assign') return;
    agent.onAssign?.(msg.value.jobId, process.hrtime.bigint());
    if (!o.complete || o.complete(msg.value)) finish(msg.value);
  });
  call.write({
    msg: {
      $case: 'hello',
      value: {
        name: o.name,
        joinToken: o.token,
        labels: { sim: 'true', ...o.labels, ...executorLabels(o.executors ?? []) },
        capacity: { slots: o.slots, cpuMillis: 0, memoryMb: 0 },
        version: 'sim',
        protocolVersion: PROTOCOL_VERSION,
        held: [],
        hostname: 'sim',
        credential: '',
        containment: o.containment ?? '',
      },
    },
  });
  let hb: NodeJS.Timeout | undefined;
  function beat(everyMs: number): void {
    clearInterval(hb);
    hb = setInterval(
      () => call.write({ msg: { $case: 'heartbeat', value: { draining: false, load: o.load ?? 0, unhealthy: '' } } }),
      everyMs,
    );
    hb.unref();
  }
  return agent;
}
