/**
 * PeerService as deployed: real in-process control planes over real gRPC.
 * On the client port (no `--peer-listen`) it refuses anyone without the
 * cluster's peer token. With `--peer-listen`, two peers on a real etcd serve
 * it only on that address, announce it in the mesh, and still forward an
 * assignment to the peer holding the agent and copy and read its log there.
 */
import { credentials, Metadata, status as Status, type ServiceError } from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PeerServiceClient } from '../proto/gen/runmesh/v1/peer.js';
import { JobState } from '../proto/gen/runmesh/v1/job.js';
import { ControlPlane } from '../control-plane/server.js';
import type { ControlPlaneInput } from '../control-plane/options.js';
import { peerKey, PeerClients, PeerSecret, type PeerCallError, type PeerInfo } from '../control-plane/mesh/index.js';
import { openEtcdStore, type EtcdStore } from '../control-plane/store/etcd.js';
import { adminToken, TestClient } from './support/client.js';
import { freePort, startEtcd, type TestEtcd } from './support/etcd.js';
import { waitLeader } from './support/mesh.js';
import { startServer, stopAll, tempDir } from './support/processes.js';
import { simAgent } from './support/sim-agent.js';

const TOKEN = 'peer-listen-test-token';
let cleanup: Array<() => unknown> = [];

afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

const clusterTokens: Record<string, string> = {};

async function start(input: Partial<ControlPlaneInput>): Promise<{ cp: ControlPlane; client: TestClient }> {
  const cp = await ControlPlane.start({
    listen: ['127.0.0.1:0'],
    httpListen: '127.0.0.1:0',
    dataDir: await tempDir('runmesh-peer-listen-'),
    joinToken: TOKEN,
    logger: pino({ level: 'silent' }),
    ...input,
  });
  // On a shared etcd only the first control plane creates the cluster's admin token.
  const token = input.store ? (clusterTokens[input.store] ??= adminToken(cp.options.dataDir)) : adminToken(cp.options.dataDir);
  const client = new TestClient(cp.address, token);
  cleanup.push(
    () => cp.close(),
    () => client.close(),
  );
  return { cp, client };
}

function drainOn(address: string, md: Metadata): Promise<ServiceError | undefined> {
  const raw = new PeerServiceClient(address, credentials.createInsecure());
  return new Promise<ServiceError | undefined>((resolve) =>
    raw.deliverDrain({ agent: 'nobody', drain: { reason: 'x' } }, md, (err) => resolve(err ?? undefined)),
  ).finally(() => raw.close());
}

describe('PeerService on the client port', () => {
  it('refuses a call without the peer token, with a client token or with an agent credential', async () => {
    const { cp } = await start({});
    expect((await drainOn(cp.address, new Metadata()))?.code).toBe(Status.UNAUTHENTICATED);
    const bearer = new Metadata();
    bearer.set('authorization', 'Bearer rmt_x');
    expect((await drainOn(cp.address, bearer))?.code).toBe(Status.PERMISSION_DENIED);
    const agent = new Metadata();
    agent.set('x-runmesh-agent-credential', 'rmc_x');
    expect((await drainOn(cp.address, agent))?.code).toBe(Status.PERMISSION_DENIED);
  });
});

describe('--peer-listen', () => {
  let etcd: TestEtcd;
  let store: EtcdStore;
  beforeAll(async () => {
    etcd = await startEtcd();
    store = await openEtcdStore({ endpoints: [etcd.endpoint] });
  });
  afterAll(async () => {
    await store?.close();
    await etcd?.stop();
  });

  it('serves PeerService only there, announces it, and peers still forward assignments and logs through it', async () => {
    const etcdUrl = `etcd://${etcd.endpoint.replace(/^https?:\/\//, '')}`;
    const a = await start({ store: etcdUrl, peerId: 'pa', peerListen: '127.0.0.1:0', peerTtlSeconds: 3 });
    const b = await start({ store: etcdUrl, peerId: 'pb', peerListen: '127.0.0.1:0', peerTtlSeconds: 3 });
    const info = async (id: string): Promise<PeerInfo> => JSON.parse((await store.get(peerKey(id)))?.value ?? '{}') as PeerInfo;
    const [pa, pb] = [await info('pa'), await info('pb')];
    expect(pa.grpcAddress).toBe(a.cp.address);
    expect(pb.grpcAddress).toBe(b.cp.address);
    expect(pa.peerAddress).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(pa.peerAddress).not.toBe(pa.grpcAddress);

    // A peer of this cluster (it reads the secret from the same store) reaches PeerService on the peer address only.
    const peer = new PeerClients({ secret: await PeerSecret.load(store) });
    cleanup.push(() => peer.close());
    expect(await peer.deliverDrain(pa.peerAddress, 'nobody', { reason: 'x' })).toBe(false);
    const onClientPort = await peer.deliverDrain(pa.grpcAddress, 'nobody', { reason: 'x' }).catch((e: unknown) => e);
    expect((onClientPort as PeerCallError).code).toBe(Status.UNIMPLEMENTED);
    expect((await drainOn(pa.peerAddress, new Metadata()))?.code).toBe(Status.UNAUTHENTICATED);

    // The agent sits on the peer that does not lead, so the leader's Assign goes through the other's PeerService.
    const leader = await waitLeader(a.client);
    const holder = leader === 'pa' ? b : a;
    const agent = simAgent(holder.cp.address, { name: 'runner', token: TOKEN, slots: 2, log: 'hello over the peer port\n' });
    cleanup.push(() => agent.close());
    await agent.welcomed;
    await a.client.waitAgents(1);
    await b.client.waitAgents(1);
    const jobs = [await a.client.submit({ argv: ['true'] }), await b.client.submit({ argv: ['true'] })];
    for (const job of jobs) {
      expect((await a.client.waitDone(job.id)).state).toBe(JobState.JOB_STATE_SUCCEEDED);
      // Sealed logs are copied to the other peer (CopyLog, then ReadLog back) before the result is stored.
      const record = JSON.parse((await store.get(`/runmesh/jobs/${job.id}`))?.value ?? '{}') as { logPeers?: Record<string, string[]> };
      expect(record.logPeers?.['1']?.slice().sort()).toEqual(['pa', 'pb']);
      for (const c of [a.client, b.client]) expect((await c.logs(job.id)).stdout).toBe('hello over the peer port\n');
    }
  });
});

describe('runmesh server --peer-listen', () => {
  afterAll(() => stopAll());

  it('serves PeerService on that address and not on the client port', async () => {
    const peerAddress = `127.0.0.1:${await freePort()}`;
    const server = await startServer({ args: ['--peer-listen', peerAddress] });
    expect((await drainOn(server.address, new Metadata()))?.code).toBe(Status.UNIMPLEMENTED);
    expect((await drainOn(peerAddress, new Metadata()))?.code).toBe(Status.UNAUTHENTICATED);
  });
});
