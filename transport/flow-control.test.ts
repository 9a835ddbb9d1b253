/** widenServerWindows: what a real HTTP/2 client is told by a real grpc-js server, on tcp and unix. */
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as http2Connect, type ClientHttp2Session, type Settings } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sleep, waitUntil } from '../test/support/wait.js';
import { FLOW_CONTROL_WINDOW, widenServerWindows, CLIENT_FLOW_CONTROL_OPTIONS } from './flow-control.js';
import { bindAll } from './server.js';
import { startTestServer } from './testing/services.js';
import { testLogger } from './testing/setups.js';

const HTTP2_DEFAULT_WINDOW = 65_535;
let tmp: string;
const cleanups: Array<() => void> = [];

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'runmesh-flow-control-'));
});
afterEach(() =>
  cleanups
    .splice(0)
    .reverse()
    .forEach((c) => c()),
);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function serve(widen: boolean, address: string): Promise<string> {
  const server = startTestServer();
  if (widen) widenServerWindows(server);
  cleanups.push(() => server.forceShutdown());
  const [bound] = await bindAll(server, [address], { logger: testLogger });
  return bound!.address;
}

function rawSession(address: string): ClientHttp2Session {
  const session = address.startsWith('unix://')
    ? http2Connect('http://localhost', { createConnection: () => netConnect(address.slice('unix://'.length)) })
    : http2Connect(`http://${address}`);
  session.on('error', () => undefined);
  cleanups.push(() => session.destroy());
  return session;
}

/** The server's first SETTINGS frame. */
async function firstSettings(session: ClientHttp2Session): Promise<Settings> {
  await once(session, 'remoteSettings');
  return session.remoteSettings;
}

describe.each([
  ['tcp', () => '127.0.0.1:0'],
  ['unix', () => `unix://${join(tmp, `cp-${Math.random().toString(36).slice(2)}.sock`)}`],
])('on %s', (_name, address) => {
  it('a widened server advertises 1 MiB stream windows and opens its connection window as wide', async () => {
    const session = rawSession(await serve(true, address()));
    await firstSettings(session);
    // The wide settings and the connection's WINDOW_UPDATE may follow the first SETTINGS frame.
    await waitUntil(
      () =>
        session.remoteSettings.initialWindowSize === FLOW_CONTROL_WINDOW && (session.state.remoteWindowSize ?? 0) >= FLOW_CONTROL_WINDOW,
      { what: 'the widened windows', timeoutMs: 5_000, intervalMs: 5 },
    );
    const settings = session.remoteSettings;
    expect(settings.initialWindowSize).toBe(FLOW_CONTROL_WINDOW);
    // What this client may send on the connection before the server's next WINDOW_UPDATE.
    expect(session.state.remoteWindowSize).toBeGreaterThanOrEqual(FLOW_CONTROL_WINDOW);
  });

  it('a plain grpc-js server keeps the 64 KiB default (what widening is for)', async () => {
    const session = rawSession(await serve(false, address()));
    await firstSettings(session);
    await sleep(300); // deliberate: a widened server has updated its windows by now; this one must not
    const settings = session.remoteSettings;
    expect(settings.initialWindowSize).toBe(HTTP2_DEFAULT_WINDOW);
    expect(session.state.remoteWindowSize).toBe(HTTP2_DEFAULT_WINDOW);
  });
});

it('8 MiB goes through a widened server both ways, whole and in order', async () => {
  const address = await serve(true, '127.0.0.1:0');
  const client = new grpc.Client(address, grpc.credentials.createInsecure(), CLIENT_FLOW_CONTROL_OPTIONS);
  cleanups.push(() => client.close());
  const id = (b: Buffer): Buffer => b;
  const call = client.makeBidiStreamRequest('/runmesh.test.Bytes/Echo', id, id);
  const chunks = Array.from({ length: 128 }, (_, i) => Buffer.alloc(64 * 1024, i));
  const received: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    call.on('data', (b: Buffer) => received.push(b));
    call.on('end', resolve);
    call.on('error', reject);
  });
  for (const c of chunks) if (!call.write(c)) await once(call, 'drain');
  call.end();
  await done;
  expect(Buffer.concat(received).equals(Buffer.concat(chunks))).toBe(true);
});

it('refuses a grpc-js whose Server no longer creates its HTTP/2 servers where this hooks in', () => {
  const server = new grpc.Server();
  Object.defineProperty(server, 'createHttp2Server', { value: undefined });
  expect(() => widenServerWindows(server)).toThrow(/needs updating/);
});
