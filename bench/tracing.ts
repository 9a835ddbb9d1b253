/**
 * What tracing costs (issue 19). Off is the default and must cost nothing
 * measurable; on, every job gets a schedule and a dispatch span (and its
 * batch one Submit span), exported over OTLP/HTTP (protobuf, the default) to
 * a receiver in this process that only counts what it gets. Measured in the
 * same run, taking turns (off, on, off, on; the better round of each counts):
 * no-op jobs/s with 16 simulated agents (submit to result stored), and the
 * control plane's CPU per job. Beside them, the per-span cost in-process of
 * tracing off (the no-op) and on (SDK, no export), in nanoseconds.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { adminToken, TestClient } from '../test/support/client.js';
import { startServer, stopAll } from '../test/support/processes.js';
import { OtelTracing, TRACING_OFF, type Tracing } from '../transport/tracing/tracing.js';
import { throughput } from './spine.js';
import { cpuSeconds, line, round } from './stats.js';

const JOBS = 5_000;
const SPANS = 200_000;

interface Sink {
  server: Server;
  requests: number;
  bytes: number;
}

/** An OTLP/HTTP endpoint that accepts every export and counts it. */
function startSink(): Promise<Sink> {
  const sink: Sink = { server: createServer(), requests: 0, bytes: 0 };
  sink.server.on('request', (req, res) => {
    req.on('data', (c: Buffer) => (sink.bytes += c.length));
    req.on('end', () => {
      sink.requests++;
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  return new Promise((resolve) => sink.server.listen(0, '127.0.0.1', () => resolve(sink)));
}

/** One round: a fresh control plane (traced or not), JOBS no-op jobs through it. */
async function round1(env: Record<string, string>): Promise<{ jobsPerS: number; cpuMsPerJob: number }> {
  const server = await startServer({ args: ['--heartbeat-timeout', '60s'], env });
  const client = new TestClient(server.address, adminToken(server.dataDir));
  try {
    const cpu0 = cpuSeconds(server.proc.pid);
    const jobsPerS = await throughput(server.address, client, JOBS);
    return { jobsPerS, cpuMsPerJob: round(((cpuSeconds(server.proc.pid) - cpu0) * 1000) / JOBS, 3) };
  } finally {
    client.close();
    await server.stop();
  }
}

function nsPerSpan(t: Tracing): number {
  const parent = { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', tracestate: '' };
  const start = process.hrtime.bigint();
  for (let i = 0; i < SPANS; i++) t.start('runmesh.dispatch', parent, { attributes: { 'runmesh.job.id': 'j' } }).end('delivered');
  return round(Number(process.hrtime.bigint() - start) / SPANS, 0);
}

export async function benchTracing(): Promise<void> {
  const sink = await startSink();
  const on = {
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(sink.server.address() as AddressInfo).port}`,
  };
  try {
    const rounds = { off: [] as Array<Awaited<ReturnType<typeof round1>>>, on: [] as Array<Awaited<ReturnType<typeof round1>>> };
    for (let i = 0; i < 2; i++) {
      rounds.off.push(await round1({}));
      rounds.on.push(await round1(on));
    }
    const best = (rs: typeof rounds.off): { jobsPerS: number; cpuMsPerJob: number } => ({
      jobsPerS: Math.max(...rs.map((r) => r.jobsPerS)),
      cpuMsPerJob: Math.min(...rs.map((r) => r.cpuMsPerJob)),
    });
    const off = best(rounds.off);
    const traced = best(rounds.on);
    line(`tracing: no-op jobs/s, 16 sim agents (${JOBS} jobs)`, {
      off: off.jobsPerS,
      on_otlp: traced.jobsPerS,
      'on/off': round(traced.jobsPerS / off.jobsPerS, 2),
    });
    line('tracing: control-plane CPU per job (ms)', {
      off: off.cpuMsPerJob,
      on_otlp: traced.cpuMsPerJob,
      'on/off': round(traced.cpuMsPerJob / off.cpuMsPerJob, 2),
      exported_kb_per_job: round(sink.bytes / 1024 / (2 * JOBS), 2),
    });
    const provider = new BasicTracerProvider();
    const noop = nsPerSpan(TRACING_OFF);
    line('tracing: one span in-process (ns)', {
      off_noop: noop,
      on_sdk_no_exporter: nsPerSpan(new OtelTracing(provider.getTracer('bench'), () => provider.shutdown())),
      // A job passes two spans (schedule, dispatch) when tracing is off: their share of its control-plane CPU.
      'off, 2 spans, of job CPU %': round(((2 * noop) / (off.cpuMsPerJob * 1e6)) * 100, 4),
    });
    await provider.shutdown();
  } finally {
    await stopAll();
    sink.server.close();
  }
}
