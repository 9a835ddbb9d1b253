/** TLS refusals: a client with the wrong CA or without a client cert fails UNAVAILABLE; the server keeps serving. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClientTlsFiles } from './credentials.js';
import { makeTestCerts, type TestCerts } from './testing/certs.js';
import { healthCheck } from './testing/services.js';
import { startTransport, type Running, type TransportKind } from './testing/setups.js';

let tmp: string;
let certs: TestCerts;

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'runmesh-transport-tls-'));
  certs = makeTestCerts(tmp);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function expectRefused(running: Running, tls: ClientTlsFiles): Promise<void> {
  const { client } = await running.connect({ tls });
  await expect(healthCheck(client, 10_000)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
}

/** Starts `kind` and checks a well-configured client is served, for the refusals to be compared against. */
function serving(kind: TransportKind): { running: () => Running; good: () => grpc.Client } {
  let running: Running;
  let good: grpc.Client;
  beforeAll(async () => {
    running = await startTransport(kind, certs, tmp);
    ({ client: good } = await running.connect());
    await expect(healthCheck(good)).resolves.toBe('SERVING');
  });
  afterAll(async () => running.close());
  return { running: () => running, good: () => good };
}

describe.each<TransportKind>(['tcp+mtls', 'wss'])('TLS over %s', (kind) => {
  const ctx = serving(kind);

  it('refuses a client that trusts the wrong CA, and keeps serving others', async () => {
    await expectRefused(ctx.running(), { ca: certs.rogueCa, cert: certs.clientCert, key: certs.clientKey });
    await expect(healthCheck(ctx.good())).resolves.toBe('SERVING');
  });
});

describe('mTLS client certificates', () => {
  const ctx = serving('tcp+mtls');

  it('refuses a client without a certificate, and keeps serving others', async () => {
    await expectRefused(ctx.running(), { ca: certs.ca });
    await expect(healthCheck(ctx.good())).resolves.toBe('SERVING');
  });

  it('refuses a client certificate from another CA, and still accepts new good clients', async () => {
    await expectRefused(ctx.running(), { ca: certs.ca, cert: certs.rogueClientCert, key: certs.rogueClientKey });
    const { client: fresh } = await ctx.running().connect();
    await expect(healthCheck(fresh)).resolves.toBe('SERVING');
  });
});
