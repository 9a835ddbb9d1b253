/**
 * The restricted network for real: Debian's nginx in front of the control
 * plane, speaking only HTTP/1.1 to clients (as corporate reverse proxies do).
 * gRPC's HTTP/2 cannot pass it; the agent's WebSocket tunnel can, and the
 * agent falls back to it on its own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobState } from '../proto/gen/runmesh/v1/job.js';
import { adminToken, TestClient } from './support/client.js';
import { removeDir, startAgent, startServer, stopAll, tempDir, type ServerProc } from './support/processes.js';
import { waitUntil } from './support/wait.js';

const NGINX = '/usr/sbin/nginx';
const hasNginx = existsSync(NGINX);
const skipped = hasNginx ? '' : ' (skipped: nginx not installed)';

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A reverse proxy config: /agent upgraded to WebSocket, everything else plain HTTP/1.1. */
function nginxConf(dir: string, port: number, upstream: string): string {
  const temp = (name: string): string => join(dir, 'temp', name);
  return `user root;
worker_processes 1;
events { worker_connections 256; }
http {
  access_log ${join(dir, 'access.log')};
  client_body_temp_path ${temp('client_body')};
  proxy_temp_path ${temp('proxy')};
  fastcgi_temp_path ${temp('fastcgi')};
  uwsgi_temp_path ${temp('uwsgi')};
  scgi_temp_path ${temp('scgi')};
  server {
    listen 127.0.0.1:${port};
    location /agent {
      proxy_pass http://${upstream};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_read_timeout 3600s;
    }
    location / { proxy_pass http://${upstream}; }
  }
}
`;
}

interface Nginx {
  proc: ChildProcess;
  address: string;
  output: () => string;
  stop(): Promise<void>;
}

/**
 * Starts nginx in the foreground with its master process off, so one pid is
 * all there is to kill; ready once /healthz answers through it.
 */
async function startNginx(dir: string, upstream: string): Promise<Nginx> {
  const port = await freePort();
  await mkdir(join(dir, 'temp'), { recursive: true });
  await writeFile(join(dir, 'nginx.conf'), nginxConf(dir, port, upstream));
  const globals = `daemon off; master_process off; pid ${join(dir, 'nginx.pid')}; error_log ${join(dir, 'error.log')};`;
  const proc = spawn(NGINX, ['-p', dir, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf'), '-g', globals], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const address = `127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(t);
  };
  await waitUntil(
    async () => {
      if (proc.exitCode !== null) throw new Error(`nginx exited: ${out}`);
      const res = await fetch(`http://${address}/healthz`).catch(() => undefined);
      return res?.ok ?? false;
    },
    { what: 'nginx to proxy /healthz', timeoutMs: 10_000 },
  ).catch(async (err: Error) => {
    await stop();
    throw err;
  });
  return { proc, address, output: () => out, stop };
}

const tmpBefore = process.env.TMPDIR;

describe('restricted network: an HTTP/1.1-only reverse proxy (nginx) in front of the control plane', () => {
  let dir: string;
  let server: ServerProc;
  let client: TestClient;
  let nginx: Nginx | undefined;

  beforeAll(async () => {
    if (!hasNginx) return;
    dir = await tempDir('runmesh-nginx-');
    // Processes killed with SIGKILL cannot remove their own temp dirs (ws tunnel and bridge sockets): give them ours.
    process.env.TMPDIR = dir;
    server = await startServer({ dataDir: join(dir, 'cp') });
    client = new TestClient(server.address, adminToken(server.dataDir));
    nginx = await startNginx(dir, server.http);
  });

  afterAll(async () => {
    client?.close();
    await nginx?.stop();
    await stopAll();
    if (tmpBefore === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = tmpBefore;
    if (dir) await removeDir(dir);
  });

  it.skipIf(!hasNginx)(`gRPC over tcp through the proxy fails: the agent never becomes ready${skipped}`, async () => {
    const agent = await startAgent(`tcp://${nginx?.address}`, { name: 'grpc-via-proxy', workDir: join(dir, 'grpc-via-proxy') });
    // Refused on every try, not once: the agent keeps dialling through the proxy and never gets in.
    const refusals = (): number =>
      agent
        .output()
        .split('\n')
        .filter((l) => l.includes('"msg":"transport address unreachable"')).length;
    await waitUntil(() => refusals() >= 3, { what: 'three refused dials through the proxy', timeoutMs: 30_000 });
    expect((await client.agents()).agents.map((a) => a.name)).not.toContain('grpc-via-proxy');
    expect(agent.output()).toContain('transport address unreachable');
    expect(agent.proc.exitCode).toBeNull();
    await agent.stop('SIGKILL');
  });

  it.skipIf(!hasNginx)(`tcp then ws: falls back to the WebSocket through the proxy and runs jobs end to end${skipped}`, async () => {
    const ws = `ws://${nginx?.address}/agent`;
    const agent = await startAgent(`tcp://${nginx?.address},${ws}`, {
      name: 'ws-via-proxy',
      workDir: join(dir, 'ws-via-proxy'),
      labels: 'agent=ws-via-proxy',
    });
    await client.waitAgents(1, 30_000);
    const reachable = agent
      .output()
      .split('\n')
      .filter((l) => l.includes('"msg":"transport address reachable"'));
    expect(reachable.length).toBeGreaterThan(0);
    expect(reachable.every((l) => l.includes(`"address":"${ws}"`))).toBe(true);
    const ok = await client.submit({ script: 'seq 1 5000; echo oops >&2', selector: 'agent=ws-via-proxy' });
    const bad = await client.submit({ script: 'echo bye; exit 4', selector: 'agent=ws-via-proxy' });
    const okDone = await client.waitDone(ok.id);
    expect(okDone.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect(okDone.attempts[0]?.agent).toBe('ws-via-proxy');
    const logs = await client.logs(ok.id);
    expect(logs.stdout).toBe(Array.from({ length: 5000 }, (_, i) => `${i + 1}\n`).join(''));
    expect(logs.stderr).toBe('oops\n');
    const badDone = await client.waitDone(bad.id);
    expect(badDone.state).toBe(JobState.JOB_STATE_FAILED);
    expect(badDone.exitCode).toBe(4);
    expect((await client.logs(bad.id)).stdout).toBe('bye\n');
  });
});
