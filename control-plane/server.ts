/**
 * One control-plane peer: wires store, job state, scheduler, gateway, mesh,
 * API and the HTTP port, and shuts them down in order. Two of these can run
 * in one process (no globals), which the tests rely on.
 *
 * Startup order: state is loaded from the store; the gRPC and HTTP ports are
 * bound (health says NOT_SERVING); the peer joins the mesh under its bound
 * address; then the services are added and health turns SERVING.
 */
import { Server } from '@grpc/grpc-js';
import type { Server as HttpServer } from 'node:http';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { VERSION } from '../proto/version.js';
import { HealthTracker, Router } from '../routing/index.js';
import { bindAll, serveWebSocketTunnel, widenServerWindows, KEEPALIVE_SERVER_OPTIONS, type BoundAddress } from '../transport/index.js';
import { ClusterServiceImpl } from './api/cluster-service.js';
import { JobServiceImpl } from './api/job-service.js';
import { readLocalLog } from './api/logs-follow.js';
import { clusterView } from './cluster-view.js';
import { AgentAuth } from './gateway/auth.js';
import { Gateway } from './gateway/gateway.js';
import { AgentRegistry } from './gateway/registry.js';
import { createHttpServer, listenHttp, type Route } from './http/http-server.js';
import { createMetrics } from './http/metrics.js';
import { JobRepo } from './jobs/repo.js';
import { JobTracker } from './jobs/tracker.js';
import { JobWriter } from './jobs/writer.js';
import { LogStore } from './logs/log-store.js';
import { MeshNode } from './mesh/node.js';
import { PeerServiceImpl } from './mesh/peer-service.js';
import { resolveOptions, type ControlPlaneInput, type ControlPlaneOptions } from './options.js';
import { addHealth, addReflection, SERVICES } from './reflection.js';
import { Housekeeper } from './housekeeping.js';
import { ActiveIndex } from './scheduler/active-index.js';
import { HealthFeed } from './scheduler/health-feed.js';
import { Scheduler } from './scheduler/scheduler.js';
import { openStore } from './store/index.js';
import type { Store } from './store/store.js';

interface Parts {
  o: ControlPlaneOptions;
  log: Logger;
  store: Store;
  repo: JobRepo;
  tracker: JobTracker;
  writer: JobWriter;
  logs: LogStore;
  registry: AgentRegistry;
  index: ActiveIndex;
  gateway: Gateway;
  grpc: Server;
  http: HttpServer;
  routes: Record<string, Route>;
  health: ReturnType<typeof addHealth>;
  /** Set once the peer has joined the mesh. */
  mesh?: MeshNode;
  scheduler?: Scheduler;
  housekeeper?: Housekeeper;
  metrics?: { close(): void };
  tunnel?: { close(): Promise<void> };
}

export class ControlPlane {
  private closing: Promise<void> | undefined;

  private constructor(
    readonly options: ControlPlaneOptions,
    readonly grpcAddresses: string[],
    readonly httpAddress: string,
    private readonly parts: Parts & { mesh: MeshNode },
  ) {}

  /** The first gRPC address, as clients dial it. */
  get address(): string {
    return this.grpcAddresses[0] ?? '';
  }

  /** Resolves if this peer loses its mesh lease (paused too long, store gone): it must stop. */
  get lost(): Promise<Error> {
    return this.parts.mesh.lost;
  }

  static async start(input: ControlPlaneInput): Promise<ControlPlane> {
    const o = resolveOptions(input);
    const log = o.logger.child({ peer_id: o.peerId });
    await mkdir(o.dataDir, { recursive: true });
    const store = await openStore(o.store, o.dataDir, log);
    const parts = await core(o, log, store);
    try {
      const bound = await bindAll(parts.grpc, o.listen, { tls: o.tls, logger: log });
      const grpcAddresses = bound.map((b) => b.address);
      const httpAddress = await listenHttp(parts.http, o.httpListen);
      const mesh = await MeshNode.start({
        store,
        peerId: o.peerId,
        grpcAddress: dialable(bound),
        httpAddress,
        ttlSeconds: o.peerTtlSeconds,
        gateway: parts.gateway,
        registry: parts.registry,
        logger: log,
        // A peer's reader stops following once the agent's stream moved elsewhere; the reader finds where.
        readLocalLog: (id, attempt, from, follow, signal) =>
          readLocalLog(
            parts.tracker,
            parts.logs,
            id,
            attempt,
            from,
            follow,
            signal,
            (live) => parts.mesh?.logIsHere(live, attempt) ?? true,
          ),
        logs: parts.logs,
      });
      parts.mesh = mesh;
      serve(parts, mesh);
      if (o.webSocket) parts.tunnel = await serveWebSocketTunnel(parts.grpc, parts.http, { path: '/agent', logger: log });
      for (const s of ['', ...SERVICES]) parts.health.setStatus(s, 'SERVING');
      log.info({ grpc: grpcAddresses, http: httpAddress, store: store.kind, version: VERSION }, 'control plane ready');
      return new ControlPlane(o, grpcAddresses, httpAddress, { ...parts, mesh });
    } catch (err) {
      await shutdown(parts);
      throw err;
    }
  }

  /** Stops intake, ends agent streams, leaves the mesh, closes storage. Idempotent. */
  close(): Promise<void> {
    return (this.closing ??= shutdown(this.parts));
  }
}

/** The address other peers dial: the first tcp listener, else the first one. */
function dialable(bound: BoundAddress[]): string {
  return (bound.find((b) => b.scheme === 'tcp' || b.scheme === 'tcps') ?? bound[0])?.address ?? '';
}

async function core(o: ControlPlaneOptions, log: Logger, store: Store): Promise<Parts> {
  const repo = new JobRepo(store);
  const tracker = new JobTracker(repo, log);
  await tracker.start();
  const writer = new JobWriter(repo, tracker, log);
  const logs = new LogStore(join(o.dataDir, 'blobs', 'logs'));
  const registry = new AgentRegistry();
  const index = new ActiveIndex();
  const grpc = new Server({ ...KEEPALIVE_SERVER_OPTIONS, 'grpc.max_receive_message_length': 16 * 1024 * 1024 });
  widenServerWindows(grpc); // agents' log streams: 64 KiB windows halve their throughput
  const health = addHealth(grpc);
  addReflection(grpc);
  const routes: Record<string, Route> = {};
  const http = createHttpServer({
    routes,
    ready: async () => {
      await store.revision();
      return { ok: true, detail: `ready (store ${store.kind}, ${tracker.size} live jobs)` };
    },
  });
  const parts: Parts = {
    o,
    log,
    store,
    repo,
    tracker,
    writer,
    logs,
    registry,
    index,
    grpc,
    http,
    routes,
    health,
    gateway: undefined as unknown as Gateway,
  };
  parts.gateway = new Gateway({
    repo,
    tracker,
    writer,
    logs,
    registry,
    index,
    logger: log,
    peerId: o.peerId,
    // The mesh joins once the gRPC server is bound; no agent is served before that.
    replicateLog: (id, attempt, records) => parts.mesh?.replicateLog(id, attempt, records) ?? Promise.resolve([o.peerId]),
    auth: new AgentAuth(o.joinToken),
    heartbeatIntervalMs: o.heartbeatIntervalMs,
    heartbeatTimeoutMs: o.heartbeatTimeoutMs,
    onAgentsChanged: () => parts.scheduler?.kick(),
  });
  return parts;
}

/** Starts the scheduler (it acts only while leader) and adds the services. */
function serve(p: Parts, mesh: MeshNode): void {
  const { o, log, tracker, index, registry } = p;
  const agentHealth = new HealthTracker();
  const scheduler = new Scheduler({
    writer: new JobWriter(p.repo, tracker, log, () => mesh.fence()),
    tracker,
    index,
    agents: mesh,
    dispatcher: mesh,
    router: new Router({ tenantWeights: o.tenantWeights, health: agentHealth }),
    healthFeed: new HealthFeed(agentHealth),
    isLeader: () => mesh.isLeader(),
    agentLostAfterMs: o.heartbeatTimeoutMs,
    logger: log,
  });
  p.scheduler = scheduler;
  p.housekeeper = new Housekeeper({
    repo: p.repo,
    store: p.store,
    logs: p.logs,
    logger: log,
    jobRetentionMs: o.jobRetentionMs,
    compactionIntervalMs: o.compactionIntervalMs,
    maxEndedJobs: o.maxEndedJobs,
    liveJobs: () => tracker.size,
    isLeader: () => mesh.isLeader(),
    fence: () => mesh.fence(),
  });
  p.housekeeper.start();
  tracker.onDeleted((id) => void p.housekeeper?.forget(id));
  mesh.directory.onChange(() => scheduler.kick());
  mesh.election.onChange(() => scheduler.kick());
  scheduler.start();
  p.gateway.addToServer(p.grpc);
  p.gateway.open(mesh);
  new PeerServiceImpl(mesh, log).addToServer(p.grpc);
  new JobServiceImpl({
    repo: p.repo,
    tracker,
    writer: p.writer,
    logs: p.logs,
    logger: log,
    cancelOnAgent: (agent, id, attempt, grace, reason) => mesh.cancel(agent, id, attempt, grace, reason),
    waitingReason: (id) => scheduler.waitingReason(id),
    logLocator: {
      here: (record, attempt) => mesh.logIsHere(record, attempt),
      read: (record, attempt, from, follow, signal) => mesh.remoteLog(record, attempt, from, follow, signal),
    },
    admit: (records) => scheduler.admit(records),
    retention: { ageMs: o.jobRetentionMs, maxEnded: o.maxEndedJobs },
  }).addToServer(p.grpc);
  const cluster = new ClusterServiceImpl({ view: clusterView(mesh, registry, index, scheduler), tracker, logger: log, version: VERSION });
  cluster.addToServer(p.grpc);
  const metrics = createMetrics({ tracker, cluster, housekeeping: p.housekeeper?.stats });
  p.metrics = metrics;
  p.routes['/metrics'] = metrics.route;
}

/** Every step runs even if an earlier one throws. */
async function shutdown(p: Parts): Promise<void> {
  const steps: Array<[string, () => unknown]> = [
    ['health', () => p.health.setStatus('', 'NOT_SERVING')],
    ['gateway', () => p.gateway.close()],
    ['tunnel', () => p.tunnel?.close()],
    ['grpc', () => shutdownGrpc(p.grpc)],
    ['http', () => new Promise<void>((r) => (p.http.listening ? p.http.close(() => r()) : r()))],
    ['metrics', () => p.metrics?.close()],
    ['scheduler', () => p.scheduler?.close()],
    ['housekeeping', () => p.housekeeper?.close()],
    ['mesh', () => p.mesh?.close()],
    ['tracker', () => p.tracker.close()],
    ['logs', () => p.logs.close()],
    ['store', () => p.store.close()],
  ];
  for (const [name, step] of steps) {
    try {
      await step();
    } catch (err) {
      p.log.warn({ err, step: name }, 'shutdown step failed');
    }
  }
  p.http.closeAllConnections?.();
  p.log.info('control plane stopped');
}

function shutdownGrpc(server: Server): Promise<void> {
  return new Promise((resolve) => {
    const force = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, 2000);
    server.tryShutdown(() => {
      clearTimeout(force);
      resolve();
    });
  });
}
