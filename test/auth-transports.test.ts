/**
 * No transport is a way around authentication: the same calls get the same
 * answers over tcp, tls, a Unix socket and the WebSocket tunnel of real
 * server processes. Anonymous calls are UNAUTHENTICATED, a viewer may read
 * but not submit or cordon (PERMISSION_DENIED), an admin may submit.
 */
import { credentials, Metadata, type Interceptor, type ServiceError, status } from '@grpc/grpc-js';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterServiceClient } from '../proto/gen/runmesh/v1/cluster.js';
import { JobServiceClient, JobSpec } from '../proto/gen/runmesh/v1/job.js';
import { CreateTokenRequest, TokenServiceClient } from '../proto/gen/runmesh/v1/token.js';
import { pino } from 'pino';
import { parseAddress } from '../transport/address.js';
import { dial, type Dialer } from '../transport/dial.js';
import { makeTestCerts, type TestCerts } from '../transport/testing/certs.js';
import { adminToken, bearer } from './support/client.js';
import { run, startServer, stopAll, tempDir, type ServerProc } from './support/processes.js';

const log = pino({ level: 'silent' });

let certs: TestCerts;
let plain: ServerProc;
let tls: ServerProc;
let dir: string;
const dialers: Dialer[] = [];

/** Every gRPC address the server printed, in --listen order. */
const grpcAddresses = (server: ServerProc): string[] =>
  (server.output().match(/runmesh server: gRPC (.*), http \S+/)?.[1] ?? '').split(', ');
const tcpOf = (server: ServerProc): string => grpcAddresses(server).find((a) => !a.startsWith('unix:')) ?? '';

beforeAll(async () => {
  dir = await tempDir('runmesh-auth-tr-');
  certs = makeTestCerts(dir);
  plain = await startServer({ dataDir: join(dir, 'plain'), listen: `unix://${join(dir, 'cp.sock')}`, args: ['--listen', '127.0.0.1:0'] });
  tls = await startServer({ dataDir: join(dir, 'tls'), args: ['--tls-cert', certs.serverCert, '--tls-key', certs.serverKey] });
});

afterAll(async () => {
  for (const d of dialers) await d.close();
  await stopAll();
});

type Callback<T> = (err: ServiceError | null, res: T) => void;
const codeOf = <T>(fn: (cb: Callback<T>) => unknown): Promise<status> =>
  new Promise((resolve) => fn((err) => resolve(err ? err.code : status.OK)));

/** Clients over `address` (any transport) carrying `token` (none: anonymous). */
async function clients(
  address: string,
  token: string | undefined,
): Promise<{ jobs: JobServiceClient; cluster: ClusterServiceClient; tokens: TokenServiceClient }> {
  const d = await dial(parseAddress(address), { tls: { ca: certs.ca }, logger: log });
  dialers.push(d);
  const interceptors: Interceptor[] = token ? [bearer(token)] : [];
  const options = { ...d.channelOptions, interceptors };
  return {
    jobs: new JobServiceClient(d.target, d.credentials, options),
    cluster: new ClusterServiceClient(d.target, d.credentials, options),
    tokens: new TokenServiceClient(d.target, d.credentials, options),
  };
}

const transports = (): Array<{ name: string; address: string; server: ServerProc }> => [
  { name: 'tcp', address: `tcp://${tcpOf(plain)}`, server: plain },
  { name: 'unix', address: `unix://${join(dir, 'cp.sock')}`, server: plain },
  { name: 'ws', address: `ws://${plain.http}/agent`, server: plain },
  { name: 'tls', address: `tcps://${tcpOf(tls)}`, server: tls },
];

describe('every transport enforces the same authentication and roles', () => {
  it('answers anonymous, viewer and admin calls alike over tcp, unix, ws and tls', async () => {
    const seen: Record<string, Record<string, status>> = {};
    for (const t of transports()) {
      const admin = await clients(t.address, adminToken(t.server.dataDir));
      const created = await new Promise<string>((resolve, reject) =>
        admin.tokens.createToken(
          CreateTokenRequest.fromPartial({ name: `viewer-${t.name}`, role: 'viewer', tenants: ['default'] }),
          (err, res) => (err ? reject(err) : resolve(res.token)),
        ),
      );
      const anon = await clients(t.address, undefined);
      const viewer = await clients(t.address, created);
      const spec = JobSpec.fromPartial({ argv: ['true'] });
      seen[t.name] = {
        anonSubmit: await codeOf((cb) => anon.jobs.submit({ spec }, cb)),
        anonList: await codeOf((cb) =>
          anon.jobs.list(
            {
              states: [],
              namePrefix: '',
              tenant: '',
              pageSize: 1,
              pageToken: '',
              oldestFirst: false,
              labels: '',
              createdAfter: undefined,
              createdBefore: undefined,
            },
            cb,
          ),
        ),
        anonCordon: await codeOf((cb) => anon.cluster.cordon({ name: 'x' }, cb)),
        viewerSubmit: await codeOf((cb) => viewer.jobs.submit({ spec }, cb)),
        viewerCordon: await codeOf((cb) => viewer.cluster.cordon({ name: 'x' }, cb)),
        viewerList: await codeOf((cb) =>
          viewer.jobs.list(
            {
              states: [],
              namePrefix: '',
              tenant: '',
              pageSize: 1,
              pageToken: '',
              oldestFirst: false,
              labels: '',
              createdAfter: undefined,
              createdBefore: undefined,
            },
            cb,
          ),
        ),
        adminSubmit: await codeOf((cb) => admin.jobs.submit({ spec }, cb)),
      };
      for (const c of [admin, anon, viewer]) for (const client of Object.values(c)) client.close();
    }
    const expected = {
      anonSubmit: status.UNAUTHENTICATED,
      anonList: status.UNAUTHENTICATED,
      anonCordon: status.UNAUTHENTICATED,
      viewerSubmit: status.PERMISSION_DENIED,
      viewerCordon: status.PERMISSION_DENIED,
      viewerList: status.OK,
      adminSubmit: status.OK,
    };
    expect(seen).toEqual({ tcp: expected, unix: expected, ws: expected, tls: expected });
  });
});

// The CLI's --server takes every address form the agent does, through the same parser and dialer.
it('lets the runmesh command reach the control plane over tcp://, unix://, ws:// and tcps://', async () => {
  const seen: Record<string, unknown> = {};
  for (const t of transports()) {
    const cli = run(['jobs', 'ls', '--json', '--limit', '1', '--server', t.address, '--token', adminToken(t.server.dataDir)], {
      RUNMESH_TLS_CA: certs.ca,
      RUNMESH_CONFIG: join(dir, 'no-config.json'),
    });
    const code = await cli.stop('SIGCONT', 10_000);
    // output() has stderr too, in any order with stdout: over tcps://127.0.0.1 Node warns that an IP address cannot be
    // a TLS server name, and jobs ls says on stderr when more jobs match than --limit shows. The array is its own lines.
    const out = cli.output();
    seen[t.name] = code === 0 ? Array.isArray(JSON.parse(jsonArray(out))) : out;
  }
  expect(seen).toEqual({ tcp: true, unix: true, ws: true, tls: true });
});

/** The pretty-printed JSON array in mixed output: from a line '[' (or '[]') to the next line ']'. */
function jsonArray(out: string): string {
  const lines = out.split('\n');
  const start = lines.findIndex((l) => l === '[' || l === '[]');
  if (start < 0) return out;
  if (lines[start] === '[]') return '[]';
  const end = lines.indexOf(']', start);
  return lines.slice(start, end + 1).join('\n');
}

// A plaintext client to a TLS listener gets nowhere, token or not.
it('refuses a plaintext client on the TLS listener', async () => {
  const jobs = new JobServiceClient(tcpOf(tls), credentials.createInsecure(), { interceptors: [bearer(adminToken(tls.dataDir))] });
  const code = await codeOf((cb) =>
    jobs.list(
      {
        states: [],
        namePrefix: '',
        tenant: '',
        pageSize: 1,
        pageToken: '',
        oldestFirst: false,
        labels: '',
        createdAfter: undefined,
        createdBefore: undefined,
      },
      new Metadata(),
      { deadline: Date.now() + 3000 },
      cb,
    ),
  );
  jobs.close();
  expect(code).not.toBe(status.OK);
});
