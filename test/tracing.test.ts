/**
 * Tracing across real processes (issue 19): a real `runmesh server` and
 * `runmesh agent` export spans over OTLP/HTTP (JSON) to a receiver in this
 * test (an OpenTelemetry Collector is a boundary we do not own, and neither
 * Debian nor npm ships one that fits a test). A job submitted with a caller's
 * traceparent runs with TRACEPARENT in that trace, and the receiver gets
 * Submit, schedule, dispatch and the agent's run as one chain of parent links.
 */
import { Metadata } from '@grpc/grpc-js';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobSpec, JobState, type Job } from '../proto/gen/runmesh/v1/job.js';
import { adminToken, bigintSafe, TestClient } from './support/client.js';
import { run, startAgent, startServer, stopAll, type ServerProc } from './support/processes.js';
import { waitUntil } from './support/wait.js';

interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  attributes: Record<string, unknown>;
}

interface OtlpJson {
  resourceSpans?: Array<{
    resource?: { attributes?: OtlpAttribute[] };
    scopeSpans?: Array<{
      spans?: Array<{ traceId: string; spanId: string; parentSpanId?: string; name: string; attributes?: OtlpAttribute[] }>;
    }>;
  }>;
}
interface OtlpAttribute {
  key: string;
  value: { stringValue?: string; intValue?: string | number; boolValue?: boolean };
}

const attrs = (list: OtlpAttribute[] = []): Record<string, unknown> =>
  Object.fromEntries(list.map((a) => [a.key, a.value.stringValue ?? a.value.intValue ?? a.value.boolValue]));

/** A minimal OTLP/HTTP receiver: POST /v1/traces with a JSON ExportTraceServiceRequest. */
function startReceiver(spans: ReceivedSpan[]): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== 'POST' || req.url !== '/v1/traces') return void res.writeHead(404).end();
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpJson;
      for (const rs of body.resourceSpans ?? []) {
        const service = String(attrs(rs.resource?.attributes)['service.name']);
        for (const ss of rs.scopeSpans ?? [])
          for (const s of ss.spans ?? [])
            spans.push({
              service,
              traceId: s.traceId,
              spanId: s.spanId,
              parentSpanId: s.parentSpanId ?? '',
              name: s.name,
              attributes: attrs(s.attributes),
            });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const spans: ReceivedSpan[] = [];
let receiver: Server;
let cp: ServerProc;
let client: TestClient;

beforeAll(async () => {
  receiver = await startReceiver(spans);
  const env = {
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/v1/traces`,
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '50',
  };
  cp = await startServer({ env });
  await startAgent(cp.address, { name: 'traced-1', env });
  client = new TestClient(cp.address, adminToken(cp.dataDir));
  await client.waitAgents(1);
}, 60_000);

afterAll(async () => {
  client?.close();
  await stopAll();
  receiver?.close();
});

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';

function submitTraced(spec: Partial<JobSpec>, traceparent: string): Promise<Job> {
  const md = new Metadata();
  md.set('traceparent', traceparent);
  md.set('tracestate', 'vendor=abc');
  return new Promise((resolve, reject) =>
    client.jobs.submit({ spec: JobSpec.fromPartial(spec) }, md, (err, res) => (err ? reject(err) : resolve(res.job!))),
  );
}

/** The output of `runmesh COMMAND ARGS` against the server, once it exited 0. */
async function cli(command: string[], args: string[], env: Record<string, string> = {}): Promise<string> {
  const p = run([...command, '--server', cp.address, '--token', adminToken(cp.dataDir), ...args], env);
  if (p.proc.exitCode === null) await new Promise((resolve) => p.proc.once('exit', resolve));
  expect(p.proc.exitCode, p.output()).toBe(0);
  return p.output();
}

/** The one span named `name` in trace `traceId`, once the receiver has it. */
async function spanNamed(traceId: string, name: string): Promise<ReceivedSpan> {
  await waitUntil(() => spans.some((s) => s.traceId === traceId && s.name === name), { what: `span ${name}`, timeoutMs: 10_000 });
  const found = spans.filter((s) => s.traceId === traceId && s.name === name);
  expect(found, name).toHaveLength(1);
  return found[0]!;
}

describe('tracing', () => {
  it('carries the caller trace from Submit through schedule and dispatch to the job, with parent links', async () => {
    const job = await submitTraced({ script: 'echo "tp=$TRACEPARENT ts=$TRACESTATE"', name: 'traced' }, `00-${TRACE_ID}-${CLIENT_SPAN}-01`);
    const done = await client.waitDone(job.id, 30_000);
    expect(done.state, JSON.stringify(done, bigintSafe)).toBe(JobState.JOB_STATE_SUCCEEDED);
    const m = /tp=00-([0-9a-f]{32})-([0-9a-f]{16})-01 ts=vendor=abc/.exec((await client.logs(job.id)).stdout);
    expect(m, 'the TRACEPARENT the job saw').not.toBeNull();
    expect(m![1]).toBe(TRACE_ID);

    const submit = await spanNamed(TRACE_ID, 'JobService.Submit');
    const schedule = await spanNamed(TRACE_ID, 'runmesh.schedule');
    const dispatch = await spanNamed(TRACE_ID, 'runmesh.dispatch');
    const attempt = await spanNamed(TRACE_ID, 'runmesh.attempt');
    expect(submit.parentSpanId).toBe(CLIENT_SPAN);
    expect(schedule.parentSpanId).toBe(submit.spanId);
    expect(dispatch.parentSpanId).toBe(schedule.spanId);
    expect(attempt.parentSpanId).toBe(dispatch.spanId);
    // The job runs under the agent's span; the record keeps the Submit span's context.
    expect(m![2]).toBe(attempt.spanId);
    expect(done.traceParent).toBe(`00-${TRACE_ID}-${submit.spanId}-01`);
    expect(submit.service).toBe('runmesh-server');
    expect(attempt.service).toBe('runmesh-agent');
    expect(submit.attributes).toMatchObject({ 'runmesh.job.id': job.id, 'runmesh.tenant': 'default', 'runmesh.qos': 'standard' });
    expect(dispatch.attributes).toMatchObject({ 'runmesh.job.id': job.id, 'runmesh.agent': 'traced-1', 'runmesh.outcome': 'delivered' });
    expect(attempt.attributes).toMatchObject({ 'runmesh.job.id': job.id, 'runmesh.attempt': 1, 'runmesh.outcome': 'succeeded' });
    expect(await cli(['jobs', 'get'], [job.id])).toMatch(new RegExp(`trace:\\s+${TRACE_ID}`));
  }, 40_000);

  it('`runmesh submit` joins the trace in its TRACEPARENT; a job submitted without one starts a trace of its own', async () => {
    const traceId = 'aaaabbbbccccddddeeeeffff00001111';
    const out = await cli(['submit'], ['--wait', '--', 'sh', '-c', 'echo "tp=$TRACEPARENT"'], {
      TRACEPARENT: `00-${traceId}-1111222233334444-01`,
    });
    expect(out).toMatch(new RegExp(`tp=00-${traceId}-[0-9a-f]{16}-01`));
    expect((await spanNamed(traceId, 'JobService.Submit')).parentSpanId).toBe('1111222233334444');

    const plain = await client.submit({ script: 'echo "tp=$TRACEPARENT"' });
    await client.waitDone(plain.id, 30_000);
    const own = /tp=00-([0-9a-f]{32})-[0-9a-f]{16}-01/.exec((await client.logs(plain.id)).stdout);
    expect(own, 'a TRACEPARENT though the caller sent none').not.toBeNull();
    expect((await spanNamed(own![1]!, 'JobService.Submit')).parentSpanId).toBe('');
  }, 40_000);
});
