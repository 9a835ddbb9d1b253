/**
 * The control plane's side of the agent stream, driven message by message
 * over real gRPC against a real in-process control plane (embedded store):
 * a gap in the log and a result that counts more records than arrived are
 * answered with one request to resend, and the job completes once the
 * records are in, with its log whole.
 */
import { credentials } from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentServiceClient, type ConnectRequest, type ConnectResponse, type LogAck } from '../proto/gen/runmesh/v1/agent.js';
import { JobState, LogStream } from '../proto/gen/runmesh/v1/job.js';
import { PROTOCOL_VERSION } from '../proto/protocol.js';
import { ControlPlane } from '../control-plane/server.js';
import { adminToken, TestClient } from './support/client.js';
import { tempDir } from './support/processes.js';
import { sleep, waitUntil } from './support/wait.js';

const TOKEN = 'agent-protocol-token';
let cleanup: Array<() => unknown> = [];

afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

describe('agent stream, control-plane side', () => {
  it('asks once for the records after a gap and for those a result counts but never sent, then completes the job', async () => {
    const cp = await ControlPlane.start({
      listen: ['127.0.0.1:0'],
      httpListen: '127.0.0.1:0',
      dataDir: await tempDir('runmesh-agent-protocol-'),
      joinToken: TOKEN,
      logger: pino({ level: 'silent' }),
    });
    const client = new TestClient(cp.address, adminToken(cp.options.dataDir));
    const raw = new AgentServiceClient(cp.address, credentials.createInsecure());
    const call = raw.connect();
    cleanup.push(
      () => cp.close(),
      () => client.close(),
      () => raw.close(),
      () => call.cancel(),
    );
    const got: ConnectResponse[] = [];
    call.on('data', (m: ConnectResponse) => got.push(m));
    call.on('error', () => undefined);
    const send = (m: ConnectRequest['msg']): void => void call.write({ msg: m });
    send({
      $case: 'hello',
      value: {
        name: 'raw',
        joinToken: TOKEN,
        labels: {},
        capacity: { slots: 1, cpuMillis: 0, memoryMb: 0 },
        version: 'test',
        protocolVersion: PROTOCOL_VERSION,
        containment: '',
        held: [],
        hostname: 'test',
        credential: '',
      },
    });
    await waitUntil(() => got.some((m) => m.msg?.$case === 'welcome'), { what: 'Welcome', timeoutMs: 10_000 });
    send({ $case: 'heartbeat', value: { draining: false, load: 0, unhealthy: '' } });
    await client.waitAgents(1);

    const job = await client.submit({ script: 'true' });
    await waitUntil(() => got.some((m) => m.msg?.$case === 'assign'), { what: 'the Assign', timeoutMs: 10_000 });
    const ids = { jobId: job.id, attempt: 1 };
    const acks = (): LogAck[] => got.flatMap((m) => (m.msg?.$case === 'logAck' && m.msg.value.jobId === job.id ? [m.msg.value] : []));
    const resends = (): LogAck[] => acks().filter((a) => a.resend);
    const chunk = (seq: number, text: string): void =>
      send({ $case: 'logChunk', value: { ...ids, seq, stream: LogStream.LOG_STREAM_STDOUT, data: Buffer.from(text) } });
    const result = (records: number): void => {
      const now = new Date().toISOString();
      send({
        $case: 'jobResult',
        value: {
          ...ids,
          exitCode: 0,
          failure: 0,
          message: '',
          logRecords: records,
          startedAt: now,
          finishedAt: now,
          usage: undefined,
          artifactsError: '',
          artifactsUnmatched: false,
        },
      });
    };

    send({ $case: 'jobUpdate', value: { ...ids, state: JobState.JOB_STATE_RUNNING } });
    chunk(0, 'a');
    chunk(2, 'c'); // record 1 never arrived
    chunk(3, 'd');
    await waitUntil(() => resends().length > 0, { what: 'a resend request', timeoutMs: 10_000 });
    await sleep(300); // deliberate: time for a second request, which must not come
    expect(resends()).toEqual([{ ...ids, nextSeq: 1, resend: true }]); // one request for the whole burst

    chunk(1, 'b');
    chunk(2, 'c');
    chunk(3, 'd');
    await waitUntil(() => acks().some((a) => !a.resend && a.nextSeq === 4), { what: 'records 0-3 acknowledged', timeoutMs: 10_000 });
    result(5); // counts a record we never sent
    await waitUntil(() => resends().length === 2, { what: 'a resend request for the result', timeoutMs: 10_000 });
    expect(resends()[1]).toEqual({ ...ids, nextSeq: 4, resend: true });
    expect(got.some((m) => m.msg?.$case === 'resultAck')).toBe(false);
    expect((await client.get(job.id)).state).toBe(JobState.JOB_STATE_RUNNING);

    chunk(4, 'e');
    result(5);
    await waitUntil(() => got.some((m) => m.msg?.$case === 'resultAck'), { what: 'the ResultAck', timeoutMs: 10_000 });
    const done = await client.waitDone(job.id);
    expect(done.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect(done.attempts[0]?.logRecords).toBe(5);
    expect((await client.logs(job.id)).stdout).toBe('abcde');
  });
});
