/** bindAll and the tunnel's lifecycle: stale Unix sockets, live ones, other upgrade paths, close(). */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, lstatSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, request } from 'node:http';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { isAddressInUse, isTransportError } from './errors.js';
import { bindAll, serveWebSocketTunnel } from './server.js';
import { healthCheck, startTestServer } from './testing/services.js';
import { testLogger } from './testing/setups.js';

let tmp: string;
const cleanups: Array<() => Promise<void> | void> = [];

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'runmesh-transport-server-'));
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function newServer(): grpc.Server {
  const server = startTestServer();
  cleanups.push(() => server.forceShutdown());
  return server;
}

/** Leaves a socket file with nothing behind it, the way a crash (kill -9) does. */
async function staleSocket(path: string): Promise<void> {
  const script = `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('ready'))`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  cleanups.push(() => void child.kill('SIGKILL'));
  await once(child.stdout, 'data');
  child.kill('SIGKILL');
  await once(child, 'exit');
}

async function healthOver(address: string): Promise<string> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  try {
    return await healthCheck(client);
  } finally {
    client.close();
  }
}

describe('bindAll', () => {
  it('binds tcp on port 0 and reports the resolved port', async () => {
    const [bound] = await bindAll(newServer(), ['127.0.0.1:0'], { logger: testLogger });
    expect(bound?.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(bound?.address).not.toBe('127.0.0.1:0');
    expect(bound?.url).toBe(`tcp://${bound?.address}`);
    await expect(healthOver(bound?.address ?? '')).resolves.toBe('SERVING');
  });

  it('starts over a stale unix socket file left by a killed process', async () => {
    const path = join(tmp, 'stale.sock');
    await staleSocket(path);
    expect(lstatSync(path).isSocket()).toBe(true);
    const [bound] = await bindAll(newServer(), [`unix://${path}`], { logger: testLogger });
    expect(bound?.address).toBe(`unix://${path}`);
    await expect(healthOver(`unix://${path}`)).resolves.toBe('SERVING');
  });

  it('refuses a unix socket something is listening on, with "address in use"', async () => {
    const path = join(tmp, 'live.sock');
    const live: Server = createServer((s) => s.destroy());
    await new Promise<void>((resolve) => live.listen(path, resolve));
    cleanups.push(() => new Promise<void>((resolve) => live.close(() => resolve())));
    const err = await bindAll(newServer(), [`unix://${path}`], { logger: testLogger }).catch((e: unknown) => e);
    expect(isAddressInUse(err)).toBe(true);
    expect(String(err)).toContain('address in use');
  });

  it('never deletes a regular file in the way', async () => {
    const path = join(tmp, 'not-a-socket');
    writeFileSync(path, 'keep me');
    const err = await bindAll(newServer(), [`unix://${path}`], { logger: testLogger }).catch((e: unknown) => e);
    expect(isTransportError(err)).toBe(true);
    expect(existsSync(path)).toBe(true);
  });

  it('is all or nothing: a bad second address unbinds the first', async () => {
    const server = newServer();
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const taken = (probe.address() as AddressInfo).port;
    cleanups.push(() => new Promise<void>((resolve) => probe.close(() => resolve())));
    const path = join(tmp, 'first.sock');
    await expect(bindAll(server, [`unix://${path}`, `127.0.0.1:${taken}`], { logger: testLogger })).rejects.toThrow(`127.0.0.1:${taken}`);
    await expect(healthOver(`unix://${path}`)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
  });

  it('rejects tcps without TLS options, ws addresses, and quic', async () => {
    const server = newServer();
    await expect(bindAll(server, ['tcps://127.0.0.1:0'], { logger: testLogger })).rejects.toThrow(/needs TLS/);
    await expect(bindAll(server, ['ws://127.0.0.1:0/agent'], { logger: testLogger })).rejects.toThrow(/HTTP port/);
    await expect(bindAll(server, ['quic://127.0.0.1:0'], { logger: testLogger })).rejects.toThrow(
      /quic: not supported by this Node runtime/,
    );
  });
});

describe('serveWebSocketTunnel', () => {
  async function httpServer(): Promise<{ http: ReturnType<typeof createHttpServer>; port: number }> {
    const http = createHttpServer((_req, res) => res.writeHead(200).end('ok'));
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => http.close(() => resolve())));
    return { http, port: (http.address() as AddressInfo).port };
  }

  it('answers 404 to other upgrade paths and leaves plain HTTP alone', async () => {
    const { http, port } = await httpServer();
    const tunnel = await serveWebSocketTunnel(newServer(), http, { logger: testLogger });
    cleanups.push(() => tunnel.close());
    const ws = new WebSocket(`ws://127.0.0.1:${port}/elsewhere`);
    const [err] = (await once(ws, 'error')) as [Error];
    expect(err.message).toContain('404');
    const status = await new Promise<number>((resolve, reject) => {
      request(`http://127.0.0.1:${port}/healthz`, (r) => resolve(r.statusCode ?? 0))
        .on('error', reject)
        .end();
    });
    expect(status).toBe(200);
  });

  it('makes its socket dir private, and close() is idempotent and removes it', async () => {
    const { http } = await httpServer();
    const tunnel = await serveWebSocketTunnel(newServer(), http, { logger: testLogger });
    const dir = join(tunnel.socketPath, '..');
    expect(lstatSync(dir).mode & 0o777).toBe(0o700);
    await Promise.all([tunnel.close(), tunnel.close()]);
    await tunnel.close();
    expect(existsSync(dir)).toBe(false);
    expect(http.listenerCount('upgrade')).toBe(0);
  });

  it('pings tunnels and drops a peer that stops answering', async () => {
    const { http, port } = await httpServer();
    const tunnel = await serveWebSocketTunnel(newServer(), http, { logger: testLogger, pingIntervalMs: 100 });
    cleanups.push(() => tunnel.close());
    const deaf = new WebSocket(`ws://127.0.0.1:${port}/agent`, { autoPong: false });
    const polite = new WebSocket(`ws://127.0.0.1:${port}/agent`);
    cleanups.push(() => polite.terminate());
    let pings = 0;
    polite.on('ping', () => (pings += 1));
    await Promise.all([once(deaf, 'open'), once(polite, 'open')]);
    await once(deaf, 'close');
    expect(polite.readyState).toBe(WebSocket.OPEN);
    expect(pings).toBeGreaterThanOrEqual(1);
  });
});
