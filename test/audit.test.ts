/**
 * `runmesh audit ls` against a real control plane: the CLI process, with the
 * cluster's admin token in RUNMESH_TOKEN, lists the entries the calls before
 * it left (a submit, a cancel, a refused anonymous call), filtered by actor.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlPlane } from '../control-plane/server.js';
import { adminToken, TestClient } from './support/client.js';
import { run, tempDir } from './support/processes.js';
import { waitUntil } from './support/wait.js';

const log = pino({ level: 'silent' });

let cp: ControlPlane;
let client: TestClient;
let token: string;

beforeAll(async () => {
  cp = await ControlPlane.start({
    listen: ['127.0.0.1:0'],
    httpListen: '127.0.0.1:0',
    dataDir: await tempDir('runmesh-audit-cli-'),
    joinToken: 'join-token-for-the-audit-test-0123456789',
    logger: log,
  });
  token = adminToken(cp.options.dataDir);
  client = new TestClient(cp.address, token);
});

afterAll(async () => {
  client?.close();
  await cp?.close();
});

/** Runs the CLI and returns its stdout's JSON array. */
async function auditLs(...args: string[]): Promise<Array<Record<string, string>>> {
  const cli = run(['audit', 'ls', '--json', '--server', cp.address, ...args], { RUNMESH_TOKEN: token, RUNMESH_LOG_LEVEL: 'silent' });
  await waitUntil(() => cli.proc.exitCode !== null, { what: 'runmesh audit ls to exit', timeoutMs: 15_000, show: cli.output });
  expect(cli.proc.exitCode, cli.output()).toBe(0);
  const out = cli.output();
  return JSON.parse(out.slice(out.indexOf('['), out.lastIndexOf(']') + 1)) as Array<Record<string, string>>;
}

describe('runmesh audit ls', () => {
  it('lists what was done, by whom and with what result, as JSON', async () => {
    const job = await client.submit({ argv: ['sleep', '30'] });
    await client.cancel(job.id, 'audit test');
    await new TestClient(cp.address).status().catch(() => undefined);
    const adminId = token.split('_')[1]!;
    let entries: Array<Record<string, string>> = [];
    await waitUntil(
      async () => {
        entries = await auditLs('--since', '1h');
        return entries.length >= 3;
      },
      { what: 'three audit entries', timeoutMs: 15_000 },
    );
    expect(entries.map((e) => [e.actor, e.method, e.target ?? '', e.result])).toEqual([
      [adminId, 'JobService.Submit', job.id, 'OK'],
      [adminId, 'JobService.Cancel', job.id, 'OK'],
      ['anonymous', 'ClusterService.Status', '', 'UNAUTHENTICATED'],
    ]);
    expect(entries[0]!.time).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(JSON.stringify(entries)).not.toContain(token.split('_').slice(2).join('_'));
    expect((await auditLs('--actor', 'anonymous')).map((e) => e.method)).toEqual(['ClusterService.Status']);
    expect(await auditLs('--limit', '1')).toHaveLength(1);
  });
});
