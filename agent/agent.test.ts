/**
 * The agent against a control plane that follows a script: a real gRPC server
 * on port 0 speaking the AgentService wire protocol, answering each message
 * the way the test needs (a gap, a dropped stream), and a real Agent with
 * real supervisors and jobs. What is checked is what the agent puts on the wire.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, Server, ServerCredentials, status as Status, type ServerDuplexStream } from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  AgentServiceClient,
  AgentServiceService,
  type ConnectRequest,
  type ConnectResponse,
  type JobResult,
  type LogChunk,
} from '../proto/gen/runmesh/v1/agent.js';
import { JobSpec } from '../proto/gen/runmesh/v1/job.js';
import { Agent } from './agent.js';
import { waitUntil } from '../test/support/wait.js';

type Call = ServerDuplexStream<ConnectRequest, ConnectResponse>;

/** One stream as the scripted control plane saw it. */
interface Conn {
  readonly call: Call;
  readonly at: number;
  readonly held: string[];
  readonly chunks: LogChunk[];
  readonly results: JobResult[];
}

class ScriptedControlPlane {
  readonly conns: Conn[] = [];
  private readonly server = new Server();
  /** Called after Welcome on each new stream. */
  onWelcomed: (c: Conn) => void = () => undefined;
  onChunk: (c: Conn, chunk: LogChunk) => void = () => undefined;
  onResult: (c: Conn, r: JobResult) => void = () => undefined;
  address = '';

  async start(): Promise<void> {
    this.server.addService(AgentServiceService, { connect: (call: Call) => this.connect(call) });
    const port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    this.address = `127.0.0.1:${port}`;
  }

  private connect(call: Call): void {
    call.on('error', () => undefined);
    call.on('data', (m: ConnectRequest) => {
      const msg = m.msg;
      const c = this.conns.find((x) => x.call === call);
      if (msg?.$case === 'hello') {
        const conn: Conn = { call, at: Date.now(), held: msg.value.held.map((h) => `${h.jobId}/${h.attempt}`), chunks: [], results: [] };
        this.conns.push(conn);
        // Resume whatever the agent holds, from the start of its log.
        const resume = msg.value.held.map((h) => ({ jobId: h.jobId, attempt: h.attempt, nextSeq: 0 }));
        call.write({
          msg: {
            $case: 'welcome',
            value: {
              sessionId: `s${this.conns.length}`,
              heartbeatIntervalMs: 200,
              credential: '',
              resume,
              abandon: [],
            },
          },
        });
        this.onWelcomed(conn);
      } else if (c && msg?.$case === 'logChunk') {
        c.chunks.push(msg.value);
        this.onChunk(c, msg.value);
      } else if (c && msg?.$case === 'jobResult') {
        c.results.push(msg.value);
        this.onResult(c, msg.value);
      }
    });
  }

  assign(c: Conn, jobId: string, script: string): void {
    c.call.write({
      msg: {
        $case: 'assign',
        value: {
          jobId,
          attempt: 1,
          spec: JobSpec.fromPartial({ script }),
          deadline: new Date(Date.now() + 60_000).toISOString(),
          jobToken: '',
          secretEnv: {},
          secretFiles: [],
          traceParent: '',
          traceState: '',
        },
      },
    });
  }

  ack(c: Conn, r: JobResult): void {
    c.call.write({ msg: { $case: 'resultAck', value: { jobId: r.jobId, attempt: r.attempt } } });
  }

  results(): JobResult[] {
    return this.conns.flatMap((c) => c.results);
  }

  close(): void {
    this.server.forceShutdown();
  }
}

const log = pino({ level: 'silent' });

describe('agent wire protocol', () => {
  let cp: ScriptedControlPlane;
  let agent: Agent | undefined;
  let workDir: string;

  beforeEach(async () => {
    cp = new ScriptedControlPlane();
    await cp.start();
    workDir = await mkdtemp(join(tmpdir(), 'runmesh-agent-proto-'));
  });

  afterEach(async () => {
    await agent?.close();
    agent = undefined;
    cp.close();
    await rm(workDir, { recursive: true, force: true });
  });

  const startAgent = async (): Promise<Agent> => {
    agent = new Agent({ servers: [cp.address], joinToken: 't', name: 'proto-agent', workDir, logger: log });
    await agent.start();
    return agent;
  };
  const attemptDir = (jobId: string): string => join(workDir, 'attempts', `${jobId}.1`);

  it('sends the log again at once when the control plane says it lacks records, then the result once more', async () => {
    let asked = 0;
    let sentBefore = 0;
    let firstAt = 0;
    cp.onWelcomed = (c) => cp.assign(c, 'j_resend', 'echo one; echo two >&2; echo three');
    cp.onResult = (c, r) => {
      if (asked++ === 0) {
        sentBefore = c.chunks.length;
        firstAt = Date.now();
        // As if the records had not reached us: "resend from 0".
        c.call.write({ msg: { $case: 'logAck', value: { jobId: r.jobId, attempt: r.attempt, nextSeq: 0, resend: true } } });
        return;
      }
      cp.ack(c, r);
    };
    await startAgent();
    await waitUntil(() => cp.results().length >= 1, { what: 'the first result', timeoutMs: 20_000 });
    const [c] = cp.conns;
    // Well inside the 15 s after which an unacknowledged result is re-sent anyway.
    await waitUntil(() => cp.results().length >= 2, { what: 'the result again after the resend request', timeoutMs: 5_000 });
    expect(Date.now() - firstAt).toBeLessThan(5_000);
    expect(cp.conns).toHaveLength(1);
    const again = c!.chunks.slice(sentBefore);
    expect(again.map((x) => x.seq)).toEqual(c!.chunks.slice(0, sentBefore).map((x) => x.seq));
    expect(Buffer.concat(again.map((x) => Buffer.from(x.data))).toString()).toContain('three');
    expect(cp.results()[1]).toMatchObject({ jobId: 'j_resend', exitCode: 0, logRecords: sentBefore });
    await waitUntil(() => !existsSync(attemptDir('j_resend')), { what: 'the attempt to be dropped after its ack', timeoutMs: 5_000 });
  });

  it('reconnects at the shortest backoff after a connection that got its Welcome ends in an error', async () => {
    cp.onWelcomed = (c) => {
      if (cp.conns.length < 8) setTimeout(() => c.call.emit('error', { code: Status.UNAVAILABLE, details: 'peer going away' }), 20);
    };
    await startAgent();
    await waitUntil(() => cp.conns.length >= 8, { what: 'eight connections', timeoutMs: 20_000 });
    const gaps = cp.conns.slice(1).map((c, i) => c.at - cp.conns[i]!.at);
    // A backoff that grew with each drop would wait 0.8-1.6 s before the 6th and 1.6-3.2 s before the 7th.
    expect(Math.max(...gaps), `gaps ${gaps.join(', ')} ms`).toBeLessThan(1_500);
  });

  it('reports a job whose Assign came on a connection that dropped while it started', async () => {
    cp.onWelcomed = (c) => {
      if (cp.conns.length !== 1) return;
      cp.assign(c, 'j_dropped', 'echo survived');
      c.call.emit('error', { code: Status.UNAVAILABLE, details: 'dropped right after the Assign' });
    };
    cp.onResult = (c, r) => cp.ack(c, r);
    await startAgent();
    await waitUntil(() => cp.results().length >= 1, { what: 'the result on a later connection', timeoutMs: 20_000 });
    expect(cp.conns.length).toBeGreaterThan(1);
    const reportedOn = cp.conns.find((c) => c.results.length > 0)!;
    expect(reportedOn).not.toBe(cp.conns[0]);
    expect(reportedOn.results[0]).toMatchObject({ jobId: 'j_dropped', exitCode: 0 });
    expect(Buffer.concat(reportedOn.chunks.map((x) => Buffer.from(x.data))).toString()).toBe('survived\n');
    await waitUntil(() => !existsSync(attemptDir('j_dropped')), { what: 'the attempt to be dropped after its ack', timeoutMs: 5_000 });
  });

  it('holds an attempt it is still starting: a Hello then names it, so a reconnect does not read as lost', async () => {
    const a = new Agent({ servers: [cp.address], joinToken: 't', name: 'starting-agent', workDir, logger: log });
    const sent: ConnectRequest[] = [];
    const client = new AgentServiceClient(cp.address, credentials.createInsecure()); // never called: the job has no artifacts
    const link = {
      signal: new AbortController().signal,
      send: (m: ConnectRequest) => sent.push(m) > 0,
      drained: () => Promise.resolve(),
      client,
    };
    const spec = JobSpec.fromPartial({ script: 'true' });
    a.onAssign(
      {
        jobId: 'j_starting',
        attempt: 1,
        spec,
        deadline: new Date(Date.now() + 60_000).toISOString(),
        jobToken: '',
        secretEnv: {},
        secretFiles: [],
        traceParent: '',
        traceState: '',
      },
      link,
    );
    // executor.start is under way (it cannot finish synchronously): the Hello of a reconnect now must hold it.
    const hello = a.hello().msg;
    expect(hello?.$case === 'hello' && hello.value.held).toEqual([{ jobId: 'j_starting', attempt: 1 }]);
    await waitUntil(() => sent.some((m) => m.msg?.$case === 'jobResult'), { what: 'its result', timeoutMs: 20_000 });
    expect(a.hello().msg).toMatchObject({ value: { held: [{ jobId: 'j_starting', attempt: 1 }] } }); // until acknowledged
    await a.close();
    client.close();
  });
});
