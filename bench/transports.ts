/**
 * Per-transport figures with real processes: a control plane and one real
 * agent reaching it over tcp, tcp+TLS, unix or ws.
 * - dispatch latency submit → job process running (the job prints its own
 *   start time, so client-side polling does not inflate it);
 * - log throughput: one job writes 200 MB to stdout; the clock stops at
 *   SUCCEEDED, and the log read back (counted, never held) must be complete;
 *   with the CPU the control plane and the agent spent per 100 MB.
 * The test client always talks over the same unix socket, so only the
 * agent's transport differs between rows.
 */
import { join } from 'node:path';
import { JobState, type LogsResponse } from '../proto/gen/runmesh/v1/job.js';
import { makeTestCerts, type TestCerts } from '../transport/testing/certs.js';
import { adminToken, TestClient } from '../test/support/client.js';
import { removeDir, startAgent, startServer, stopAll, tempDir, type ServerProc } from '../test/support/processes.js';
import { cpuSeconds, line, ms, round, summarize } from './stats.js';

const LATENCY_JOBS = 30;
const WARMUP_JOBS = 3;
const LOG_BYTES = 200 * 1024 * 1024;
const LOG_SCRIPT = `head -c ${LOG_BYTES} /dev/zero | tr '\\0' 'x'`;

interface Wiring {
  name: string;
  /** Server flags beyond `--listen unix://<dir>/cp.sock --listen 127.0.0.1:0`. */
  serverArgs: string[];
  agentAddress(server: ServerProc, grpcTcp: string, dir: string): string;
  agentArgs: string[];
}

function wirings(certs: TestCerts): Wiring[] {
  return [
    { name: 'tcp', serverArgs: [], agentAddress: (_s, tcp) => `tcp://${tcp}`, agentArgs: [] },
    {
      name: 'tls',
      serverArgs: ['--tls-cert', certs.serverCert, '--tls-key', certs.serverKey],
      agentAddress: (_s, tcp) => `tcps://${tcp}`,
      agentArgs: ['--tls-ca', certs.ca],
    },
    { name: 'unix', serverArgs: [], agentAddress: (_s, _tcp, dir) => `unix://${join(dir, 'cp.sock')}`, agentArgs: [] },
    { name: 'ws', serverArgs: [], agentAddress: (s) => `ws://${s.http}/agent`, agentArgs: [] },
  ];
}

/** The server's tcp gRPC address, from its start-up line. */
function tcpAddress(server: ServerProc): string {
  const m = server.output().match(/runmesh server: gRPC (.*), http \S+/);
  const tcp = (m?.[1] ?? '').split(', ').find((a) => !a.startsWith('unix:'));
  if (!tcp) throw new Error(`no tcp gRPC address in the server output:\n${server.output().slice(-2000)}`);
  return tcp;
}

async function dispatchLatency(client: TestClient, n: number): Promise<{ p50: number; p99: number; n: number }> {
  const samples: number[] = [];
  for (let i = 0; i < n + WARMUP_JOBS; i++) {
    const t0 = Date.now();
    const job = await client.submit({ script: 'date +%s%3N' });
    await client.waitDone(job.id);
    const started = Number((await client.logs(job.id)).stdout.trim());
    if (i >= WARMUP_JOBS) samples.push(started - t0);
  }
  return summarize(samples);
}

/** Streams a job's whole log and counts its bytes; nothing is kept. */
function countLogBytes(client: TestClient, id: string): Promise<number> {
  return new Promise((resolve, reject) => {
    let bytes = 0;
    const stream = client.jobs.logs({ id, attempt: 0, follow: false, fromSeq: 0 });
    stream.on('data', (r: LogsResponse) => (bytes += r.data.length));
    stream.on('error', reject);
    stream.on('end', () => resolve(bytes));
  });
}

/**
 * 200 MB from the job's stdout over the agent's transport into the control
 * plane: submit → SUCCEEDED; then the log is read back and counted, and
 * the run fails unless every byte arrived. The
 * read-back runs over the client's unix socket, the same for every row, and
 * is reported on its own.
 */
async function logThroughput(client: TestClient, pids: { server: number; agent: number }): Promise<LogFigures> {
  const cpu0 = { server: cpuSeconds(pids.server), agent: cpuSeconds(pids.agent) };
  const t0 = process.hrtime.bigint();
  const job = await client.submit({ script: LOG_SCRIPT, timeoutSeconds: 600 });
  const done = await client.waitDone(job.id, 600_000);
  const t1 = process.hrtime.bigint();
  // CPU per 100 MB steadies a figure the machine's speed moves by half from run to run.
  const per100 = (pid: number, before: number): number => round(((cpuSeconds(pid) - before) * 100) / 200, 2);
  const cpu = { server: per100(pids.server, cpu0.server), agent: per100(pids.agent, cpu0.agent) };
  if (done.state !== JobState.JOB_STATE_SUCCEEDED) throw new Error(`the 200 MB job ended ${JobState[done.state]}`);
  const bytes = await countLogBytes(client, job.id);
  const readBack = ms(t1, process.hrtime.bigint()) / 1000;
  if (bytes !== LOG_BYTES) throw new Error(`the 200 MB job's log has ${bytes} bytes, expected ${LOG_BYTES}`);
  const seconds = ms(t0, t1) / 1000;
  return { mbPerS: round(200 / seconds, 1), seconds: round(seconds, 2), readBackMbPerS: round(200 / readBack, 1), cpuPer100Mb: cpu };
}

interface LogFigures {
  mbPerS: number;
  seconds: number;
  readBackMbPerS: number;
  /** CPU seconds per 100 MB moved, control plane and agent (the job and its supervisor not counted). */
  cpuPer100Mb: { server: number; agent: number };
}

/** The control plane's error records (pino level ≥ 50), for a failed run's report. */
function errorLines(output: string): string {
  return output
    .split('\n')
    .filter((l) => /^\{"level":(5|6)0/.test(l))
    .slice(-5)
    .join('\n');
}

interface Figures {
  latency: { p50: number; p99: number; n: number };
  log: LogFigures;
}

async function benchOne(w: Wiring): Promise<Figures> {
  const dir = await tempDir(`runmesh-bench-${w.name}-`);
  const sock = `unix://${join(dir, 'cp.sock')}`;
  const server = await startServer({ dataDir: join(dir, 'data'), listen: sock, args: ['--listen', '127.0.0.1:0', ...w.serverArgs] });
  const client = new TestClient(sock, adminToken(server.dataDir));
  const agent = await startAgent(w.agentAddress(server, tcpAddress(server), dir), {
    name: `bench-${w.name}`,
    slots: 2,
    workDir: join(dir, 'agent'),
    args: w.agentArgs,
  });
  try {
    await client.waitAgents(1, 20_000);
    const latency = await dispatchLatency(client, LATENCY_JOBS);
    line(`transport ${w.name}: submit→process running (ms)`, latency);
    const log = await logThroughput(client, { server: server.proc.pid!, agent: agent.proc.pid! });
    line(`transport ${w.name}: 200 MB of stdout`, {
      mb_per_s: log.mbPerS,
      seconds: log.seconds,
      read_back_mb_per_s: log.readBackMbPerS,
      cpu_s_per_100mb_control_plane: log.cpuPer100Mb.server,
      cpu_s_per_100mb_agent: log.cpuPer100Mb.agent,
    });
    return { latency, log };
  } catch (err) {
    throw new Error(`transport ${w.name}: ${(err as Error).message}\ncontrol-plane errors:\n${errorLines(server.output())}`, {
      cause: err,
    });
  } finally {
    client.close();
    await agent.stop();
    await server.stop();
    await removeDir(dir);
  }
}

export async function benchTransports(): Promise<void> {
  const certDir = await tempDir('runmesh-bench-certs-');
  try {
    const figures = new Map<string, Figures>();
    for (const w of wirings(makeTestCerts(certDir))) figures.set(w.name, await benchOne(w));
    const tcp = figures.get('tcp');
    const ws = figures.get('ws');
    if (tcp && ws) {
      line('transports: ws/tcp dispatch latency', {
        p50_ratio: round(ws.latency.p50 / tcp.latency.p50),
        p99_ratio: round(ws.latency.p99 / tcp.latency.p99),
        target: '≤1.5',
      });
    }
    if (tcp) line('transports: tcp log throughput', { mb_per_s: tcp.log.mbPerS, target: '≥50' });
  } finally {
    await stopAll();
    await removeDir(certDir);
  }
}
