/** The transport contract, run over every transport: unary, ordered bidi, and bulk bytes arrive intact. */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestCerts, type TestCerts } from './testing/certs.js';
import { healthCheck, openEcho } from './testing/services.js';
import { ALL_KINDS, startTransport, type Running } from './testing/setups.js';

const MESSAGES = 1_000;
const BULK_CHUNK = 64 * 1024;
const BULK_CHUNKS = 320; // 20 MiB

let tmp: string;
let certs: TestCerts;

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'runmesh-transport-contract-'));
  certs = makeTestCerts(tmp);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe.each(ALL_KINDS)('transport contract over %s', (kind) => {
  let running: Running;
  let client: grpc.Client;

  beforeAll(async () => {
    running = await startTransport(kind, certs, tmp);
    ({ client } = await running.connect());
  });
  afterAll(async () => running.close());

  it('answers a unary health check', async () => {
    await expect(healthCheck(client)).resolves.toBe('SERVING');
  });

  it('echoes 1,000 messages in order on one bidi stream', async () => {
    const call = openEcho(client);
    const received: number[] = [];
    call.on('data', (b: Buffer) => received.push(b.readUInt32BE(0)));
    for (let i = 0; i < MESSAGES; i++) {
      const message = Buffer.alloc(64, i % 251);
      message.writeUInt32BE(i, 0);
      call.write(message);
    }
    call.end();
    await once(call, 'end');
    expect(received).toEqual(Array.from({ length: MESSAGES }, (_, i) => i));
  });

  it('carries 20 MB through one stream intact', async () => {
    const call = openEcho(client);
    const sent = createHash('sha256');
    const got = createHash('sha256');
    let gotBytes = 0;
    call.on('data', (b: Buffer) => {
      got.update(b);
      gotBytes += b.length;
    });
    const ended = once(call, 'end');
    const started = performance.now();
    for (let i = 0; i < BULK_CHUNKS; i++) {
      const chunk = Buffer.alloc(BULK_CHUNK, (i * 31) % 256);
      chunk.writeUInt32BE(i, 0);
      sent.update(chunk);
      if (!call.write(chunk)) await once(call, 'drain');
    }
    call.end();
    await ended;
    const seconds = (performance.now() - started) / 1000;
    const megabytes = (BULK_CHUNK * BULK_CHUNKS) / 1e6;
    console.log(
      `[transport] ${kind.padEnd(8)} ${megabytes.toFixed(1)} MB echoed in ${seconds.toFixed(2)} s: ${(megabytes / seconds).toFixed(1)} MB/s each way`,
    );
    expect(gotBytes).toBe(BULK_CHUNK * BULK_CHUNKS);
    expect(got.digest('hex')).toBe(sent.digest('hex'));
  });
});
