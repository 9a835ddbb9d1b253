import type { Server } from 'node:http';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/support/processes.js';
import { createHttpServer, listenHttp, type Route } from './http-server.js';
import { guardMetrics, isLoopback } from './metrics-auth.js';

const log = pino({ level: 'silent' });
const metrics: Route = (_req, res) => void res.writeHead(200).end('runmesh_jobs 1\n');
const servers: Server[] = [];

afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** Serves /metrics behind the guard on `listen`; returns the port. */
async function serve(listen: string, tokenFile: string): Promise<number> {
  const routes: Record<string, Route> = {};
  const server = createHttpServer({ routes, ready: async () => ({ ok: true, detail: 'ready' }) });
  servers.push(server);
  const address = await listenHttp(server, listen);
  routes['/metrics'] = await guardMetrics(metrics, { httpAddress: address, tokenFile, log });
  return Number(address.split(':').pop());
}

const get = async (port: number, authorization?: string): Promise<number> =>
  (await fetch(`http://127.0.0.1:${port}/metrics`, { headers: authorization ? { authorization } : {} })).status;

describe('/metrics access', () => {
  it('tells loopback addresses from the rest', () => {
    expect(['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost'].map(isLoopback)).toEqual([true, true, true, true, true]);
    expect(['0.0.0.0', '10.0.0.5', '::', '128.0.0.1'].map(isLoopback)).toEqual([false, false, false, false]);
  });

  it('is open on a loopback listener', async () => {
    expect(await get(await serve('127.0.0.1:0', ''))).toBe(200);
  });

  it('asks for the metrics token on any other listener, and refuses everyone when there is none', async () => {
    const file = join(await tempDir('runmesh-metrics-'), 'metrics.token');
    await writeFile(file, 'scrape-me\n', { mode: 0o600 });
    const port = await serve('0.0.0.0:0', file);
    expect(await get(port)).toBe(401);
    expect(await get(port, 'Bearer wrong')).toBe(401);
    expect(await get(port, 'Bearer scrape-me')).toBe(200);
    expect(await get(await serve('0.0.0.0:0', ''), 'Bearer scrape-me')).toBe(403);
  });
});
