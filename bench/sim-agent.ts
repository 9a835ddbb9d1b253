/**
 * A simulated agent for benchmarks: speaks the real protocol over real gRPC
 * (Hello, heartbeats, results) but completes each assignment at once instead
 * of spawning a process.
 */
import { credentials } from '@grpc/grpc-js';
import { AgentServiceClient, type ConnectResponse } from '../proto/gen/runmesh/v1/agent.js';
import { PROTOCOL_VERSION } from '../proto/protocol.js';

export interface SimAgent {
  /** Called with the job id when an Assign arrives (before the result is sent). */
  onAssign?: (jobId: string, at: bigint) => void;
  readonly welcomed: Promise<void>;
  close(): void;
}

export function simAgent(address: string, o: { name: string; token: string; slots: number; client?: AgentServiceClient; onAssign?: (jobId: string, at: bigint) => void }): SimAgent {
  const client = o.client ?? new AgentServiceClient(address, credentials.createInsecure());
  const call = client.connect();
  let resolveWelcome!: () => void;
  const welcomed = new Promise<void>((r) => (resolveWelcome = r));
  const agent: SimAgent = {
    onAssign: o.onAssign,
    welcomed,
    close: () => {
      clearInterval(hb);
      call.cancel();
      if (!o.client) client.close();
    },
  };
  call.on('error', () => undefined);
  call.on('data', (m: ConnectResponse) => {
    const msg = m.msg;
    if (msg?.$case === 'welcome') resolveWelcome();
    if (msg?.$case !== 'assign') return;
    agent.onAssign?.(msg.value.jobId, process.hrtime.bigint());
    const now = new Date().toISOString();
    call.write({ msg: { $case: 'jobResult', value: { jobId: msg.value.jobId, attempt: msg.value.attempt, exitCode: 0, failure: 0, message: '', logRecords: 0, startedAt: now, finishedAt: now } } });
  });
  call.write({ msg: { $case: 'hello', value: { name: o.name, joinToken: o.token, labels: { sim: 'true' }, capacity: { slots: o.slots, cpuMillis: 0, memoryMb: 0 }, version: 'sim', protocolVersion: PROTOCOL_VERSION, held: [], hostname: 'sim' } } });
  const hb = setInterval(() => call.write({ msg: { $case: 'heartbeat', value: { freeSlots: o.slots, running: 0, draining: false, load: 0 } } }), 2000);
  hb.unref();
  return agent;
}
