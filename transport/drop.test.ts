/**
 * Abrupt drops while the server streams: the process must not see an uncaught
 * error, the call must fail with UNAVAILABLE/INTERNAL, and the next call on the
 * same client must succeed over a fresh connection.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeTestCerts, type TestCerts } from './testing/certs.js';
import { ConnectProxy, Relay } from './testing/relays.js';
import { healthCheck, openStream } from './testing/services.js';
import { startTransport, type Running } from './testing/setups.js';
import { within } from '../test/support/wait.js';

const STEP_TIMEOUT_MS = 20_000;

let tmp: string;
let certs: TestCerts;
const uncaught: unknown[] = [];
const onUncaught = (err: unknown): void => {
  uncaught.push(err);
};
const cleanups: Array<() => Promise<void>> = [];

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'runmesh-transport-drop-'));
  certs = makeTestCerts(tmp);
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUncaught);
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  expect(uncaught).toEqual([]);
});
afterAll(() => {
  process.off('uncaughtException', onUncaught);
  process.off('unhandledRejection', onUncaught);
  rmSync(tmp, { recursive: true, force: true });
});

/** Streams from the server, kills the path after the first MiB, checks the status and a fresh call. */
async function dropMidStream(client: grpc.Client, kill: () => number): Promise<void> {
  const call = openStream(client, 100_000, 16 * 1024);
  let received = 0;
  const firstMiB = new Promise<void>((resolve) => {
    call.on('data', (b: Buffer) => {
      received += b.length;
      if (received >= 1 << 20) resolve();
    });
  });
  const failed = new Promise<grpc.ServiceError>((resolve) => call.on('error', resolve));
  await within(firstMiB, { what: 'the first MiB', timeoutMs: STEP_TIMEOUT_MS });
  expect(kill()).toBeGreaterThan(0);
  const err = await within(failed, { what: 'the call to fail', timeoutMs: STEP_TIMEOUT_MS });
  expect([grpc.status.UNAVAILABLE, grpc.status.INTERNAL]).toContain(err.code);
  await expect(healthCheck(client, STEP_TIMEOUT_MS, true)).resolves.toBe('SERVING');
}

async function start(kind: 'tcp' | 'unix' | 'ws'): Promise<Running> {
  const running = await startTransport(kind, certs, tmp);
  cleanups.push(() => running.close());
  return running;
}

describe('abrupt drop mid-stream', () => {
  it('tcp: the connection is cut between client and server', async () => {
    const running = await start('tcp');
    const port = Number(running.address.split(':').pop());
    const relay = await Relay.start({ port: 0, host: '127.0.0.1' }, { host: '127.0.0.1', port });
    cleanups.push(() => relay.close());
    const { client } = await running.connect({ address: `tcp://127.0.0.1:${relay.port}` });
    await dropMidStream(client, () => relay.killAll());
  });

  it('unix: the connection is cut between client and server', async () => {
    const running = await start('unix');
    const relayPath = join(tmp, 'relay.sock');
    const relay = await Relay.start({ path: relayPath }, { path: running.address.slice('unix://'.length) });
    cleanups.push(() => relay.close());
    const { client } = await running.connect({ address: `unix://${relayPath}` });
    await dropMidStream(client, () => relay.killAll());
  });

  it('ws: the server side terminates the WebSocket', async () => {
    const running = await start('ws');
    const serverSockets = new Set<Socket>();
    running.http?.on('upgrade', (_req, socket: Socket) => serverSockets.add(socket));
    const { client } = await running.connect();
    await dropMidStream(client, () => {
      for (const s of serverSockets) s.destroy();
      return serverSockets.size;
    });
  });

  it("ws: the client bridge's socket is killed (at its proxy)", async () => {
    const running = await start('ws');
    const proxy = await ConnectProxy.start();
    cleanups.push(() => proxy.close());
    const { client } = await running.connect({ env: { HTTP_PROXY: proxy.url } });
    await dropMidStream(client, () => proxy.killAll());
    expect(proxy.connects).toBeGreaterThanOrEqual(2);
  });
});
