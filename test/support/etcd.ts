/**
 * A real, single-member etcd for tests: random loopback ports, a fresh data
 * directory, fast elections, and a restart that keeps data and ports (for
 * "etcd restarts under load" tests). Output goes to `etcd.log` in the data
 * directory; its tail is printed when startup fails. As operators run it on
 * request: TLS with client certificates (`tls`), etcd's users and roles
 * (`auth`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Etcd3, Range } from 'etcd3';
import { NO_ETCD_FLAGS, type EtcdFlags } from '../../control-plane/store/index.js';
import { makeEtcdCerts, type TestEtcdCerts } from './etcd-certs.js';
import { waitUntil } from './wait.js';

export const ETCD_BINARY = process.env.RUNMESH_TEST_ETCD ?? '/usr/bin/etcd';
const START_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 5_000;

export interface TestEtcdOptions {
  /** TLS with `--client-cert-auth`, certificates made at setup (etcd-certs.ts); the endpoint is https://. */
  tls?: boolean;
  /** etcd's auth on: a root user, and `runmesh` whose role may read and write only under /runmesh/. */
  auth?: boolean;
  /** etcd's --auth-token-ttl, seconds (etcd's default 300). */
  authTokenTtlSeconds?: number;
}

/** The runmesh user of an etcd started with `auth`. */
export interface TestEtcdAuth {
  user: string;
  password: string;
  passwordFile: string;
  /** What its role may read and write. */
  prefix: string;
}

export interface TestEtcd {
  /** Client URL, `http://127.0.0.1:<port>` (`https://` with `tls`). */
  endpoint: string;
  /** The `--store` address: etcd:// or etcds://. */
  storeUrl: string;
  /** The `--etcd-*` flags that reach it as the runmesh user with the client certificate. */
  flags: EtcdFlags;
  certs: TestEtcdCerts | undefined;
  auth: TestEtcdAuth | undefined;
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

export async function startEtcd(options: TestEtcdOptions = {}): Promise<TestEtcd> {
  if (!existsSync(ETCD_BINARY)) {
    throw new Error(`etcd binary not found at ${ETCD_BINARY} (apt-get install etcd-server, or set RUNMESH_TEST_ETCD)`);
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'runmesh-etcd-'));
  const certs = options.tls ? await makeEtcdCerts(dir) : undefined;
  const { endpoint, args, ...first } = await launchOnFreePorts(dir, certs, options);
  let child = first.child;
  const auth = options.auth ? await enableAuth(endpoint, certs, dir) : undefined;
  let stopped = false;
  return {
    endpoint,
    storeUrl: endpoint.replace(/^https?/, certs ? 'etcds' : 'etcd'),
    flags: {
      ...NO_ETCD_FLAGS,
      ...(certs && { ca: certs.caFile, cert: certs.client.certFile, key: certs.client.keyFile }),
      ...(auth && { user: auth.user, passwordFile: auth.passwordFile }),
    },
    certs,
    auth,
    dataDir: dir,
    pid: () => child.pid ?? 0,
    kill: (signal = 'SIGKILL') => void child.kill(signal),
    async restart() {
      await terminate(child);
      child = await launch(args, dir, endpoint, certs);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await terminate(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A free port is only free until someone else binds it: another test's
 * server on port 0 can take it between our probe and etcd's bind. etcd then
 * exits saying so, and we try again on other ports.
 */
async function launchOnFreePorts(
  dir: string,
  certs: TestEtcdCerts | undefined,
  options: TestEtcdOptions,
): Promise<{ child: ChildProcess; endpoint: string; args: string[] }> {
  for (let attempt = 1; ; attempt++) {
    const [clientPort, peerPort] = [await freePort(), await freePort()];
    const endpoint = `${certs ? 'https' : 'http'}://127.0.0.1:${clientPort}`;
    const args = [...etcdArgs(dir, endpoint, `http://127.0.0.1:${peerPort}`), ...tlsArgs(certs)];
    if (options.authTokenTtlSeconds) args.push(`--auth-token-ttl=${options.authTokenTtlSeconds}`);
    try {
      return { child: await launch(args, dir, endpoint, certs), endpoint, args };
    } catch (err) {
      if (attempt >= 5 || !/address already in use/.test((err as Error).message)) throw err;
      await rm(path.join(dir, 'data'), { recursive: true, force: true });
    }
  }
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

function tlsArgs(certs: TestEtcdCerts | undefined): string[] {
  if (!certs) return [];
  return [
    '--client-cert-auth',
    `--trusted-ca-file=${certs.caFile}`,
    `--cert-file=${certs.serverCertFile}`,
    `--key-file=${certs.serverKeyFile}`,
  ];
}

/** Root and `runmesh` users, the latter's role limited to /runmesh/, then auth on (what `etcdctl auth enable` needs first). */
async function enableAuth(endpoint: string, certs: TestEtcdCerts | undefined, dir: string): Promise<TestEtcdAuth> {
  const auth: TestEtcdAuth = {
    user: 'runmesh',
    password: 'runmesh-test-password',
    passwordFile: path.join(dir, 'etcd-password'),
    prefix: '/runmesh/',
  };
  await writeFile(auth.passwordFile, `${auth.password}\n`, { mode: 0o600 });
  const client = new Etcd3({ hosts: endpoint, ...(certs && { credentials: clientCredentials(certs) }) });
  try {
    const root = await client.role('root').create();
    await (await client.user('root').create('root-test-password')).addRole(root);
    const role = await client.role('runmesh').create();
    await role.grant({ permission: 'Readwrite', range: Range.prefix(auth.prefix) });
    await (await client.user(auth.user).create(auth.password)).addRole(role);
    await client.auth.authEnable();
  } finally {
    client.close();
  }
  return auth;
}

const clientCredentials = (certs: TestEtcdCerts): { rootCertificate: Buffer; privateKey: Buffer; certChain: Buffer } => ({
  rootCertificate: readFileSync(certs.caFile),
  privateKey: readFileSync(certs.client.keyFile),
  certChain: readFileSync(certs.client.certFile),
});

async function launch(args: string[], dir: string, endpoint: string, certs?: TestEtcdCerts): Promise<ChildProcess> {
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
    await waitHealthy(endpoint, child, certs);
    return child;
  } catch (err) {
    await terminate(child);
    const tail = (await readFile(logPath, 'utf8').catch(() => '')).split('\n').slice(-30).join('\n');
    throw new Error(`etcd did not start: ${(err as Error).message}\n--- ${logPath} (tail) ---\n${tail}`, { cause: err });
  }
}

async function waitHealthy(endpoint: string, child: ChildProcess, certs: TestEtcdCerts | undefined): Promise<void> {
  const outcome = await waitUntil(
    async () => {
      if (child.exitCode !== null || child.signalCode !== null) return `exited (${child.exitCode ?? child.signalCode})`;
      return (await health(endpoint, certs)) && 'healthy';
    },
    { what: `a healthy answer from ${endpoint}`, timeoutMs: START_TIMEOUT_MS, intervalMs: 50 },
  );
  if (outcome !== 'healthy') throw new Error(`etcd ${outcome}`);
}

/** etcd's /health (over TLS with the client certificate when there are certificates); false while it is not up. */
function health(endpoint: string, certs: TestEtcdCerts | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const options = {
      timeout: 1_000,
      ...(certs && { ca: readFileSync(certs.caFile), cert: readFileSync(certs.client.certFile), key: readFileSync(certs.client.keyFile) }),
    };
    const req = (certs ? https : http).get(`${endpoint}/health`, options, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve(res.statusCode === 200 && /"health":\s*"true"/.test(body)));
      res.on('error', () => resolve(false));
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
  });
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
