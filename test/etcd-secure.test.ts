/**
 * A peer on etcd as operators run it (TLS, client certificates, etcd's own
 * users): `runmesh server` refuses to start on a wrong CA, a missing client
 * certificate or a wrong password, saying which; a client certificate that
 * expires while the peer runs turns /readyz not ready without stopping it.
 * (The store contract over TLS and auth is control-plane/store/etcd-secure.test.ts;
 * a three-peer mesh over TLS is in mesh.test.ts.)
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlPlane } from '../control-plane/server.js';
import { otherCa } from './support/etcd-certs.js';
import { startEtcd, type TestEtcd } from './support/etcd.js';
import { etcdFlagArgs } from './support/mesh.js';
import { run, tempDir, TOKEN } from './support/processes.js';
import { waitUntil } from './support/wait.js';

let etcd: TestEtcd;
beforeAll(async () => {
  etcd = await startEtcd({ tls: true, auth: true });
});
afterAll(async () => {
  await etcd?.stop();
});

/** `runmesh server` on the secured etcd with `flags` changed; resolves with its exit code and output once it exits. */
async function serverExit(change: Partial<TestEtcd['flags']>): Promise<{ code: number | null; output: string }> {
  const flags = { ...etcd.flags, ...change };
  const dataDir = await tempDir('runmesh-etcd-refused-');
  const p = run([
    'server',
    '--listen',
    '127.0.0.1:0',
    '--http-listen',
    '127.0.0.1:0',
    '--data-dir',
    dataDir,
    '--join-token',
    TOKEN,
    '--store',
    etcd.storeUrl,
    ...etcdFlagArgs(flags),
  ]);
  const code = await waitUntil(() => p.proc.exitCode ?? (p.proc.signalCode ? -1 : false), {
    what: 'the server to exit',
    timeoutMs: 30_000,
  });
  return { code, output: p.output() };
}

describe('runmesh server on a secured etcd', () => {
  it('refuses to start with a CA that did not sign etcd’s certificate, no client certificate, or a wrong password, naming each', async () => {
    const other = await otherCa(etcd.dataDir);
    const wrongPassword = path.join(etcd.dataDir, 'wrong-password');
    await writeFile(wrongPassword, 'not-the-password\n');
    const [wrongCa, noCert, badPassword] = await Promise.all([
      serverExit({ ca: other.caFile }),
      serverExit({ cert: '', key: '' }),
      serverExit({ passwordFile: wrongPassword }),
    ]);
    expect(wrongCa.code).toBe(1);
    expect(wrongCa.output).toMatch(/runmesh: etcd at https:\/\/127\.0\.0\.1:\d+: its certificate is not signed by the CA in --etcd-ca/);
    expect(noCert.code).toBe(1);
    expect(noCert.output).toMatch(/etcd requires a client certificate: give --etcd-cert and --etcd-key/);
    expect(badPassword.code).toBe(1);
    expect(badPassword.output).toMatch(/etcd refused user "runmesh": wrong password \(--etcd-password-file\)/);
    expect(badPassword.output).not.toContain('not-the-password');
  });

  it('turns /readyz not ready when its etcd client certificate expires, and keeps running', async () => {
    // Valid long enough for the peer to start on a busy runner, then it lapses.
    const notAfter = new Date(Date.now() + 8_000);
    const short = await etcd.certs!.issueClient('peer-short', { notAfter });
    const lines: string[] = [];
    const cp = await ControlPlane.start({
      listen: ['127.0.0.1:0'],
      httpListen: '127.0.0.1:0',
      dataDir: path.join(await tempDir('runmesh-etcd-expiry-'), 'data'),
      joinToken: TOKEN,
      store: etcd.storeUrl,
      etcd: { ...etcd.flags, cert: short.certFile, key: short.keyFile },
      logger: pino({ level: 'info' }, { write: (line: string) => void lines.push(line) }),
    });
    try {
      const readyz = async (): Promise<{ status: number; body: string }> => {
        const res = await fetch(`http://${cp.httpAddress}/readyz`);
        return { status: res.status, body: await res.text() };
      };
      expect((await readyz()).status).toBe(200);
      const notReady = await waitUntil(async () => ((await readyz()).status === 503 ? readyz() : false), {
        what: '/readyz to turn 503',
        timeoutMs: 20_000,
        intervalMs: 250,
      });
      expect(notReady.body).toMatch(/etcd client certificate \(--etcd-cert\) expired at/);
      expect(lines.some((l) => l.includes('"msg":"etcd client certificate expired"'))).toBe(true);
      expect((await fetch(`http://${cp.httpAddress}/healthz`)).status).toBe(200);
    } finally {
      await cp.close();
    }
  });
});
