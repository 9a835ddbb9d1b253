/**
 * A real, single-member etcd for tests: random loopback ports, a fresh data
 * directory, fast elections, and a restart that keeps data and ports (for
 * "etcd restarts under load" tests). Output goes to `etcd.log` in the data
 * directory; its tail is printed when startup fails.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { waitUntil } from './wait.js';

export const ETCD_BINARY = process.env.RUNMESH_TEST_ETCD ?? '/usr/bin/etcd';
const START_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 5_000;

export interface TestEtcd {
  /** Client URL, `http://127.0.0.1:<port>`. */
  endpoint: string;
  dataDir: string;
  /** Kills etcd and removes its directory. Idempotent. */
  stop(): Promise<void>;
  /** The running etcd's process id (benchmarks read its CPU time). */
  pid(): number;
  /** Sends a signal (default SIGKILL) without waiting or cleaning up. */
  kill(signal?: NodeJS.Signals): void;
  /** Stops etcd and starts it again on the same data and ports; resolves once it answers. */
  restart(): Promise<void>;
}

export async function startEtcd(): Promise<TestEtcd> {
  if (!existsSync(ETCD_BINARY)) {
    throw new Error(`etcd binary not found at ${ETCD_BINARY} (apt-get install etcd-server, or set RUNMESH_TEST_ETCD)`);
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'runmesh-etcd-'));
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const endpoint = `http://127.0.0.1:${clientPort}`;
  const args = etcdArgs(dir, endpoint, `http://127.0.0.1:${peerPort}`);
  let child = await launch(args, dir, endpoint);
  let stopped = false;
  return {
    endpoint,
    dataDir: dir,
    pid: () => child.pid ?? 0,
    kill: (signal = 'SIGKILL') => void child.kill(signal),
    async restart() {
      await terminate(child);
      child = await launch(args, dir, endpoint);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await terminate(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function etcdArgs(dir: string, client: string, peer: string): string[] {
  return [
    '--name=test',
    `--data-dir=${path.join(dir, 'data')}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=test=${peer}`,
    '--initial-cluster-state=new',
    '--heartbeat-interval=10',
    '--election-timeout=100',
    '--log-level=warn',
  ];
}

async function launch(args: string[], dir: string, endpoint: string): Promise<ChildProcess> {
  const logPath = path.join(dir, 'etcd.log');
  const log = createWriteStream(logPath, { flags: 'a' });
  const child = spawn(ETCD_BINARY, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    // 3.4 refuses to start on arm64 without it.
    env: process.arch === 'arm64' ? { ...process.env, ETCD_UNSUPPORTED_ARCH: 'arm64' } : process.env,
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  try {
    await waitHealthy(endpoint, child);
    return child;
  } catch (err) {
    await terminate(child);
    const tail = (await readFile(logPath, 'utf8').catch(() => '')).split('\n').slice(-30).join('\n');
    throw new Error(`etcd did not start: ${(err as Error).message}\n--- ${logPath} (tail) ---\n${tail}`, { cause: err });
  }
}

async function waitHealthy(endpoint: string, child: ChildProcess): Promise<void> {
  const outcome = await waitUntil(
    async () => {
      if (child.exitCode !== null || child.signalCode !== null) return `exited (${child.exitCode ?? child.signalCode})`;
      const res = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1_000) });
      const body = (await res.json()) as { health?: string };
      return res.ok && body.health === 'true' && 'healthy';
    },
    { what: `a healthy answer from ${endpoint}`, timeoutMs: START_TIMEOUT_MS, intervalMs: 50 },
  );
  if (outcome !== 'healthy') throw new Error(`etcd ${outcome}`);
}

/** SIGTERM, then SIGKILL after a grace period; resolves when the process is gone. */
async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
}

/** A port that was free a moment ago (bind port 0 on loopback, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
