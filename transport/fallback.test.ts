/** FallbackDialer: skips the dead, remembers the living, and refuses silent downgrades. */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DowngradeRefusedError, isDowngradeRefused, isNoReachableAddress, isTransportError } from './errors.js';
import { FallbackDialer } from './fallback.js';
import { makeTestCerts, type TestCerts } from './testing/certs.js';
import { healthCheck } from './testing/services.js';
import { startTransport, testLogger, type Running } from './testing/setups.js';

let tmp: string;
let certs: TestCerts;
let tcp: Running;
let ws: Running;
let closedPort: number;

/** A port that was just free: nothing listens there, so connects are refused at once. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'runmesh-transport-fallback-'));
  certs = makeTestCerts(tmp);
  tcp = await startTransport('tcp', certs, tmp);
  ws = await startTransport('ws', certs, tmp);
  closedPort = await freePort();
});
afterAll(async () => {
  await tcp.close();
  await ws.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('FallbackDialer', () => {
  it('skips an unreachable address, returns the good one, and remembers it', async () => {
    const dead = `tcp://127.0.0.1:${closedPort}`;
    const fallback = new FallbackDialer([dead, ws.address], { logger: testLogger, env: {} });
    const dialer = await fallback.next();
    try {
      expect(dialer.address).toBe(ws.address);
      const client = new grpc.Client(dialer.target, dialer.credentials, dialer.channelOptions);
      await expect(healthCheck(client)).resolves.toBe('SERVING');
      client.close();
    } finally {
      await dialer.close();
    }
    expect(fallback.order).toEqual([ws.address, dead]);
    fallback.markGood(`127.0.0.1:${closedPort}`);
    expect(fallback.order[0]).toBe(dead);
  });

  it('gives up within the per-address deadline on an address that never answers', async () => {
    // A listener that accepts and says nothing: the connect succeeds, HTTP/2 settings never come.
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const silentPort = (silent.address() as AddressInfo).port;
    try {
      const fallback = new FallbackDialer([`127.0.0.1:${silentPort}`, tcp.address], {
        logger: testLogger,
        env: {},
        perAddressTimeoutMs: 500,
      });
      const dialer = await fallback.next();
      expect(dialer.address).toBe(tcp.address);
      await dialer.close();
    } finally {
      silent.close();
    }
  });

  it('refuses to fall back from wss to plaintext tcp, with the operator-facing message', async () => {
    const from = `wss://127.0.0.1:${closedPort}/agent`;
    const fallback = new FallbackDialer([from, tcp.address], { logger: testLogger, env: {} });
    const err = await fallback.next().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DowngradeRefusedError);
    expect(isDowngradeRefused(err)).toBe(true);
    expect(isTransportError(err)).toBe(true);
    expect((err as Error).message).toBe(
      `refusing to fall back from ${from} to plaintext ${tcp.address}; pass --allow-insecure-fallback to allow it`,
    );
  });

  it('falls back to plaintext when allowDowngrade is set', async () => {
    const fallback = new FallbackDialer([`wss://127.0.0.1:${closedPort}/agent`, tcp.address], {
      logger: testLogger,
      env: {},
      allowDowngrade: true,
    });
    const dialer = await fallback.next();
    expect(dialer.address).toBe(tcp.address);
    await dialer.close();
  });

  it('reports every attempt when nothing answers, and honours abort', async () => {
    const fallback = new FallbackDialer([`127.0.0.1:${closedPort}`, `ws://127.0.0.1:${closedPort}/agent`], {
      logger: testLogger,
      env: {},
    });
    const err = await fallback.next().catch((e: unknown) => e);
    expect(isNoReachableAddress(err)).toBe(true);
    expect(String(err)).toContain(`ws://127.0.0.1:${closedPort}/agent`);
    const aborted = AbortSignal.abort(new Error('agent stopping'));
    await expect(fallback.next(aborted)).rejects.toThrow('agent stopping');
  });

  it('rejects garbage addresses up front', () => {
    expect(() => new FallbackDialer(['tcp://nope'], { logger: testLogger })).toThrow(/tcp:\/\/nope/);
    expect(() => new FallbackDialer([], { logger: testLogger })).toThrow(/no transport address/);
  });
});
