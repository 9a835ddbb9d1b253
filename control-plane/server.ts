/**
 * One control-plane peer: wires store, job state, scheduler, gateway, API and
 * the HTTP port, and shuts them down in order. Two of these can run in one
 * process (no globals), which the tests rely on.
 */
import { Server } from '@grpc/grpc-js';
import type { Server as HttpServer } from 'node:http';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { HealthTracker, Router } from '../routing/index.js';
import { bindAll, serveWebSocketTunnel, KEEPALIVE_SERVER_OPTIONS } from '../transport/index.js';
import { ClusterServiceImpl } from './api/cluster-service.js';
import { JobServiceImpl } from './api/job-service.js';
import { AgentAuth } from './gateway/auth.js';
import { Gateway } from './gateway/gateway.js';
import { AgentRegistry } from './gateway/registry.js';
import { createHttpServer, listenHttp } from './http/http-server.js';
import { createMetrics } from './http/metrics.js';
import { JobRepo } from './jobs/repo.js';
import { JobTracker } from './jobs/tracker.js';
import { JobWriter } from './jobs/writer.js';
import { LogStore } from './logs/log-store.js';
import { resolveOptions, type ControlPlaneInput, type ControlPlaneOptions } from './options.js';
import { addHealth, addReflection, SERVICES } from './reflection.js';
import { ActiveIndex } from './scheduler/active-index.js';
import { HealthFeed } from './scheduler/health-feed.js';
import { Scheduler } from './scheduler/scheduler.js';
import { openStore } from './store/index.js';
import type { Store } from './store/store.js';
import { VERSION } from '../proto/version.js';

export class ControlPlane {
  private closing: Promise<void> | undefined;

  private constructor(
    readonly options: ControlPlaneOptions,
    readonly grpcAddresses: string[],
    readonly httpAddress: string,
    private readonly parts: Parts,
  ) {}

  /** The first gRPC address, as clients dial it. */
  get address(): string {
    return this.grpcAddresses[0] ?? '';
  }

  static async start(input: ControlPlaneInput): Promise<ControlPlane> {
    const o = resolveOptions(input);
    const log = o.logger.child({ peer_id: o.peerId });
    await mkdir(o.dataDir, { recursive: true });
    const store = await openStore(o.store, o.dataDir, log);
    const parts = await assemble(o, store);
    try {
      const bound = await bindAll(parts.grpc, o.listen, { tls: o.tls, logger: log });
      const grpcAddresses = bound.map((b) => b.address);
      const httpAddress = await listenHttp(parts.http, o.httpListen);
      if (o.webSocket) parts.tunnel = await serveWebSocketTunnel(parts.grpc, parts.http, { path: '/agent', logger: log });
      for (const s of ['', ...SERVICES]) parts.health.setStatus(s, 'SERVING');
      parts.ready = true;
      log.info({ grpc: grpcAddresses, http: httpAddress, store: store.kind, version: VERSION }, 'control plane ready');
      return new ControlPlane(o, grpcAddresses, httpAddress, parts);
    } catch (err) {
      await shutdown(parts, o);
      throw err;
    }
  }

  /** Stops intake, ends agent streams, drains the scheduler, closes storage. Idempotent. */
  close(): Promise<void> {
    return (this.closing ??= shutdown(this.parts, this.options));
  }
}

interface Parts {
  store: Store;
  tracker: JobTracker;
  scheduler: Scheduler;
  gateway: Gateway;
  logs: LogStore;
  grpc: Server;
  http: HttpServer;
  health: ReturnType<typeof addHealth>;
  metrics: { close(): void };
  tunnel?: { close(): Promise<void> };
  ready: boolean;
}

async function assemble(o: ControlPlaneOptions, store: Store): Promise<Parts> {
  const logger = o.logger.child({ peer_id: o.peerId });
  const repo = new JobRepo(store);
  const tracker = new JobTracker(repo, logger);
  await tracker.start();
  const writer = new JobWriter(repo, tracker, logger);
  const logs = new LogStore(join(o.dataDir, 'blobs', 'logs'));
  const registry = new AgentRegistry(o.peerId);
  const index = new ActiveIndex();
  let scheduler: Scheduler | undefined;
  const gateway = new Gateway({
    repo, tracker, writer, logs, registry, logger, index,
    auth: new AgentAuth(o.joinToken),
    heartbeatIntervalMs: o.heartbeatIntervalMs,
    heartbeatTimeoutMs: o.heartbeatTimeoutMs,
    onAgentsChanged: () => scheduler?.kick(),
  });
  const agentHealth = new HealthTracker();
  const router = new Router({ tenantWeights: o.tenantWeights, health: agentHealth });
  scheduler = new Scheduler({ writer, tracker, index, agents: registry, dispatcher: gateway, router, healthFeed: new HealthFeed(agentHealth), logger });
  scheduler.start();
  gateway.start();
  const grpc = new Server({ ...KEEPALIVE_SERVER_OPTIONS, 'grpc.max_receive_message_length': 16 * 1024 * 1024 });
  const health = addHealth(grpc);
  addReflection(grpc);
  gateway.addToServer(grpc);
  const sched = scheduler;
  new JobServiceImpl({
    repo, tracker, writer, logs, logger,
    cancelOnAgent: (a, id, at, g, r) => gateway.cancel(a, id, at, g, r),
    waitingReason: (id) => sched.waitingReason(id),
  }).addToServer(grpc);
  const cluster = new ClusterServiceImpl({
    registry, tracker, logger, index, version: VERSION,
    peers: () => [{ id: o.peerId, address: o.listen[0] ?? '', leader: true, agents: registry.all().filter((a) => a.link).length }],
    leader: () => o.peerId,
    unschedulable: () => sched.unschedulable(),
    drainAgent: (name, reason) => gateway.drain(name, reason),
  });
  cluster.addToServer(grpc);
  const metrics = createMetrics({ tracker, cluster });
  const parts: Parts = { store, tracker, scheduler, gateway, logs, grpc, health, metrics, ready: false, http: undefined as unknown as HttpServer };
  parts.http = createHttpServer({
    routes: { '/metrics': metrics.route },
    ready: async () => {
      if (!parts.ready) return { ok: false, detail: 'starting' };
      await store.revision();
      return { ok: true, detail: `ready (store ${store.kind}, ${tracker.size} live jobs)` };
    },
  });
  return parts;
}

/** Every step runs even if an earlier one throws. */
async function shutdown(p: Parts, o: ControlPlaneOptions): Promise<void> {
  const log = o.logger.child({ peer_id: o.peerId });
  const steps: Array<[string, () => unknown]> = [
    ['health', () => p.health.setStatus('', 'NOT_SERVING')],
    ['gateway', () => p.gateway.close()],
    ['tunnel', () => p.tunnel?.close()],
    ['grpc', () => shutdownGrpc(p.grpc)],
    ['http', () => new Promise<void>((r) => (p.http.listening ? p.http.close(() => r()) : r()))],
    ['metrics', () => p.metrics.close()],
    ['scheduler', () => p.scheduler.close()],
    ['tracker', () => p.tracker.close()],
    ['logs', () => p.logs.close()],
    ['store', () => p.store.close()],
  ];
  for (const [name, step] of steps) {
    try {
      await step();
    } catch (err) {
      log.warn({ err, step: name }, 'shutdown step failed');
    }
  }
  p.http.closeAllConnections?.();
  log.info('control plane stopped');
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
