/**
 * One control-plane peer: wires store, job state, mesh, gateway, scheduler,
 * API and the HTTP port, and shuts them down in order. Two of these can run
 * in one process (no globals), which the tests rely on.
 *
 * Start-up builds each part once, in order, from the parts before it: state
 * is loaded from the store; the gRPC and HTTP ports are bound (health says
 * NOT_SERVING); the peer joins the mesh under its bound addresses; the
 * gateway, scheduler and services are built on the mesh and added; then
 * health turns SERVING. Nothing is reachable through a service before every
 * part it uses exists.
 */
import type { Server } from '@grpc/grpc-js';
import type { Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { VERSION } from '../proto/version.js';
import { HealthTracker, Router } from '../routing/index.js';
import { bindAll, channelCredentials, parseAddress, serveWebSocketTunnel, TransportError, type BoundAddress } from '../transport/index.js';
import { Admission } from './api/admission.js';
import { AuditServiceImpl } from './api/audit-service.js';
import { ClusterServiceImpl } from './api/cluster-service.js';
import { TokenServiceImpl } from './api/token-service.js';
import { SecretServiceImpl } from './api/secret-service.js';
import { loadKeyRing, SecretStore } from './secrets/index.js';
import { AuditLog, AuditRetention } from './audit/index.js';
import { Gate, type GateLimits, JobTokens, JwtVerifier, TokenStore } from './auth/index.js';
import { currentAttemptOf } from './jobs/attempt-facts.js';
import { IdentityServiceImpl } from './api/identity-service.js';
import { Issuer, keyTimes, oidcRoutes, SigningKeys } from './oidc/index.js';
import { JobServiceImpl } from './api/job-service.js';
import type { LogLocator } from './api/logs-follow.js';
import { Console } from './console/index.js';
import { readLocalLog } from './api/logs-follow.js';
import { refusePeerCall } from './api/peer-auth.js';
import { PeerServiceImpl, type PeerHandler } from './api/peer-service.js';
import { toServiceError } from './api/status.js';
import { closeInOrder, type CloseStep } from './close.js';
import { lockDataDir, stablePeerId } from './data-dir.js';
import { clusterView } from './cluster-view.js';
import { AgentAuth } from './gateway/auth.js';
import { Secret } from './secret.js';
import { Gateway } from './gateway/gateway.js';
import { createGrpcServer } from './grpc-server.js';
import { AgentRegistry } from './gateway/registry.js';
import { CredentialRotation, rotationCheckMs } from './gateway/rotation.js';
import { Housekeeper } from './housekeeping.js';
import { createHttpServer, listenHttp, type Route } from './http/http-server.js';
import { prepareAutoTls, type AutoTls } from './tls/index.js';
import { ControlPlaneMetrics } from './metrics/index.js';
import { guardMetrics } from './http/metrics-auth.js';
import { JobRepo } from './jobs/repo.js';
import { JobTracker } from './jobs/tracker.js';
import { JobWriter } from './jobs/writer.js';
import { GroupSlots } from './jobs/group-slots.js';
import { LogStore } from './logs/log-store.js';
import { AgentCredentials } from './mesh/agent-credentials.js';
import { MeshAgents } from './mesh/agents.js';
import { PeerDispatch } from './mesh/dispatch.js';
import { LogCopies } from './mesh/log-copies.js';
import { ArtifactCopies } from './mesh/artifact-copies.js';
import { DirArtifactStorage } from './artifacts/dir-storage.js';
import type { ArtifactStorage } from './artifacts/storage.js';
import { ArtifactUploads, agentOfCall } from './api/artifact-uploads.js';
import { ArtifactServiceImpl } from './api/artifact-service.js';
import { Mesh } from './mesh/mesh.js';
import { PeerClients } from './mesh/peer-clients.js';
import { PeerSecret } from './mesh/peer-secret.js';
import { resolveOptions, type ControlPlaneInput, type ControlPlaneOptions } from './options.js';
import { addHealth, addReflection, SERVICES } from './reflection.js';
import { ActiveIndex } from './scheduler/active-index.js';
import { HealthFeed } from './scheduler/health-feed.js';
import { Scheduler } from './scheduler/scheduler.js';
import { NeedsRelease } from './pipelines/release.js';
import { PipelineServiceImpl } from './api/pipeline-service.js';
import { serveSchedules } from './serve-schedules.js';
import { serveHooks } from './serve-hooks.js';
import type { OutboundHooks } from './hooks/index.js';
import { HookStore } from './hooks/hook-store.js';
import { openStore } from './store/index.js';
import type { Store } from './store/store.js';

/** Job state a peer keeps in memory, loaded from the store before anything else. */
interface State {
  store: Store;
  repo: JobRepo;
  tracker: JobTracker;
  logs: LogStore;
  /** This peer's artifacts (blobs/artifacts): uploads in progress and stored ones. */
  artifacts: ArtifactStorage;
  registry: AgentRegistry;
  index: ActiveIndex;
  /** API tokens, as every peer follows them in the store. */
  tokens: TokenStore;
  /** Where this peer wrote the cluster's first admin token, if it was the one to create it. */
  adminTokenFile: string | undefined;
  /** `--tls-auto`: this peer's certificate files and the cluster CA's fingerprint. */
  autoTls: AutoTls | undefined;
  /** Tenants' secrets, sealed under this peer's key ring (none without a key). */
  secrets: SecretStore;
  /** This peer's /metrics registry, fed from the store's first commit on. */
  metrics: ControlPlaneMetrics;
}

/** The ports, bound before the peer joins the mesh (it announces their addresses). */
interface Ports {
  grpc: Server;
  /** What every call passes before its request is read; its checks are set once the gate exists. */
  admission: Admission;
  http: HttpServer;
  /** HTTP routes beyond the built-in health ones; /metrics is added once the services exist. */
  routes: Record<string, Route>;
  health: ReturnType<typeof addHealth>;
  bound: BoundAddress[];
  httpAddress: string;
  /** PeerService's own listener (`--peer-listen`); absent, it is served on `grpc`. */
  peer: { grpc: Server; address: string } | undefined;
  /** What /readyz asks of the parts built after the ports: why the mesh is degraded, if it is. */
  readiness: { mesh: () => string | undefined };
}

/** What {@link ControlPlane.reconfigure} can change while the peer runs; each absent field stays as it is. */
export interface LiveSettings {
  /** Fair-share weights (--tenant-weight), replacing the whole set. */
  tenantWeights?: Record<string, number>;
  /** Rate limits (--rate-token, --rate-tenant). */
  limits?: GateLimits;
}

export class ControlPlane {
  private closing: Promise<void> | undefined;

  private constructor(
    readonly options: ControlPlaneOptions,
    readonly grpcAddresses: string[],
    readonly httpAddress: string,
    /** Set on the peer that created the cluster's first admin token: the file (mode 0600) it is in. */
    readonly adminTokenFile: string | undefined,
    /** `--tls-auto`: the cluster CA's file and fingerprint (`sha256:<hex>`), which join strings carry. */
    readonly autoTls: AutoTls | undefined,
    private readonly mesh: Mesh,
    /** The shutdown, in order: intake first, storage last. */
    private readonly stop: () => Promise<void>,
    private readonly live: (settings: LiveSettings) => void,
  ) {}

  /** Changes what can change on a running peer (SIGHUP with --config); what is not given stays. Throws, changing nothing, for a bad value. */
  reconfigure(settings: LiveSettings): void {
    this.live(settings);
  }

  /** The first gRPC address, as clients dial it. */
  get address(): string {
    return this.grpcAddresses[0] ?? '';
  }

  /** Why this peer is out of the mesh for now (lease lost, rejoining), or undefined: it stays up and rejoins by itself. */
  degraded(): string | undefined {
    return this.mesh.degraded();
  }

  static async start(input: ControlPlaneInput): Promise<ControlPlane> {
    const dataDir = resolveOptions(input).dataDir;
    await mkdir(dataDir, { recursive: true });
    // Before anything else touches the data dir (or the ports): a second process on it refuses to start.
    const lock = await lockDataDir(dataDir, input.logger);
    let o: ControlPlaneOptions;
    try {
      o = resolveOptions({ ...input, peerId: input.peerId || (await stablePeerId(dataDir)) });
    } catch (err) {
      await lock.release();
      throw err;
    }
    const log = o.logger.child({ peer_id: o.peerId });
    // Each part adds its close step as it is built; a failed start closes what was built.
    const closers = new Shutdown(log);
    closers.add('data dir lock', () => lock.release());
    try {
      const state = await loadState(o, log, closers);
      const ports = await bindPorts(o, log, state, closers);
      const mesh = await Mesh.join({
        store: state.store,
        peerId: o.peerId,
        grpcAddress: dialable(ports),
        peerAddress: ports.peer?.address,
        httpAddress: ports.httpAddress,
        ttlSeconds: o.peerTtlSeconds,
        logger: log,
      });
      closers.add('mesh', () => mesh.close());
      ports.readiness.mesh = () => mesh.degraded();
      const secret = await PeerSecret.load(state.store);
      const live = await serve(o, log, state, ports, mesh, secret, closers);
      const grpcAddresses = ports.bound.map((b) => b.address);
      // The admin token itself is never logged: where it was written is.
      const admin = state.adminTokenFile ? { admin_token_file: state.adminTokenFile } : {};
      log.info(
        { grpc: grpcAddresses, http: ports.httpAddress, store: state.store.kind, version: VERSION, ...admin },
        'control plane ready',
      );
      return new ControlPlane(o, grpcAddresses, ports.httpAddress, state.adminTokenFile, state.autoTls, mesh, () => closers.run(), live);
    } catch (err) {
      await closers.run();
      throw err;
    }
  }

  /** Stops intake, ends agent streams, leaves the mesh, closes storage. Idempotent. */
  close(): Promise<void> {
    return (this.closing ??= this.stop());
  }
}

/**
 * The close steps of what has been built, run in a fixed order whatever the
 * order of building: stop intake (health, agent streams, ports), then the
 * workers, then the mesh, then state and storage.
 */
const SHUTDOWN_ORDER = [
  'health',
  'gateway',
  'tunnel',
  'grpc',
  'peer grpc',
  'console',
  'http',
  'metrics',
  'scheduler',
  'pipelines',
  'schedules',
  'hooks',
  'housekeeping',
  'audit retention',
  'mesh',
  'agent credentials',
  'peer clients',
  'tracker',
  'tokens',
  'oidc keys',
  'audit',
  'logs',
  'store',
  'data dir lock',
] as const;
type StepName = (typeof SHUTDOWN_ORDER)[number];

class Shutdown {
  private readonly steps = new Map<StepName, CloseStep>();
  private running: Promise<void> | undefined;

  constructor(private readonly log: Logger) {}

  add(name: StepName, run: () => unknown): void {
    this.steps.set(name, [name, run]);
  }

  run(): Promise<void> {
    return (this.running ??= (async () => {
      const steps = SHUTDOWN_ORDER.flatMap((name): CloseStep[] => {
        const step = this.steps.get(name);
        return step ? [step] : [];
      });
      await closeInOrder(this.log, 'control plane', steps);
      this.log.info('control plane stopped');
    })());
  }
}

async function loadState(o: ControlPlaneOptions, log: Logger, closers: Shutdown): Promise<State> {
  const metrics = new ControlPlaneMetrics();
  const store = await openStore(o.store, o.dataDir, log, o.etcd, metrics.storeCommits(o.store ? 'etcd' : 'embedded'));
  closers.add('store', () => store.close());
  const repo = new JobRepo(store);
  const tracker = new JobTracker(repo, log);
  closers.add('tracker', () => tracker.close());
  await tracker.start();
  const logs = new LogStore(join(o.dataDir, 'blobs', 'logs'), { logger: log });
  closers.add('logs', () => logs.close());
  const tokens = await TokenStore.open(store, log);
  closers.add('tokens', () => tokens.close());
  const adminTokenFile = await tokens.bootstrap(o.dataDir);
  const autoTls = o.tlsAuto
    ? await prepareAutoTls({ store, dataDir: o.dataDir, hosts: listenHosts(o), peerId: o.peerId, logger: log })
    : undefined;
  const ring = await loadKeyRing(o.secretKeys);
  if (ring) log.info({ key_id: ring.currentId, key_ids: ring.ids }, 'secrets key loaded');
  else log.info('no secrets key: secrets are off (--secrets-key-file)');
  const secrets = new SecretStore(store, ring);
  return {
    store,
    repo,
    tracker,
    logs,
    artifacts: new DirArtifactStorage(join(o.dataDir, 'blobs', 'artifacts')),
    registry: new AgentRegistry(),
    index: new ActiveIndex(),
    tokens,
    adminTokenFile,
    autoTls,
    secrets,
    metrics,
  };
}

async function bindPorts(o: ControlPlaneOptions, log: Logger, state: State, closers: Shutdown): Promise<Ports> {
  const admission = new Admission({ maxUnauthenticatedCalls: o.maxUnauthenticatedCalls });
  const grpc = createGrpcServer(admission, o.connections, state.metrics.grpcCalls);
  const health = addHealth(grpc);
  closers.add('health', () => health.setStatus('', 'NOT_SERVING'));
  addReflection(grpc);
  const routes: Record<string, Route> = {};
  const readiness: Ports['readiness'] = { mesh: () => undefined };
  const http = createHttpServer({
    routes,
    tls: state.autoTls && { cert: await readFile(state.autoTls.files.cert), key: await readFile(state.autoTls.files.key) },
    ready: async () => {
      const degraded = readiness.mesh() || state.store.degraded();
      if (degraded) return { ok: false, detail: degraded };
      // Agents' logs cannot be kept: their chunks wait, unacknowledged, in the agents' spools.
      if (state.logs.full) return { ok: false, detail: `not ready: ${state.logs.reason}` };
      await state.store.revision();
      return { ok: true, detail: `ready (store ${state.store.kind}, ${state.tracker.size} live jobs)` };
    },
  });
  closers.add('grpc', () => shutdownGrpc(grpc));
  closers.add('http', () => closeHttp(http));
  const bound = await bindAll(grpc, o.listen, { tls: state.autoTls?.files ?? o.tls, logger: log });
  if (o.plainListen) bound.push(...(await bindAll(grpc, [loopbackOnly(o.plainListen)], { tls: undefined, logger: log })));
  const httpAddress = await listenHttp(http, o.httpListen);
  return {
    grpc,
    admission,
    http,
    routes,
    health,
    bound,
    httpAddress,
    peer: await bindPeer(o, log, admission, closers, state.metrics),
    readiness,
  };
}

/** PeerService's listener of its own, plaintext like the peers' clients, when `--peer-listen` asks for one. */
async function bindPeer(
  o: ControlPlaneOptions,
  log: Logger,
  admission: Admission,
  closers: Shutdown,
  metrics: ControlPlaneMetrics,
): Promise<Ports['peer']> {
  if (!o.peerListen) return undefined;
  const grpc = createGrpcServer(admission, o.connections, metrics.grpcCalls); // logs are read and copied between peers
  closers.add('peer grpc', () => shutdownGrpc(grpc));
  const [bound] = await bindAll(grpc, [o.peerListen], { tls: undefined, logger: log });
  return { grpc, address: bound?.address ?? o.peerListen };
}

/** The hosts a `--tls-auto` certificate must name: those of every listener, and `--tls-san`. */
function listenHosts(o: ControlPlaneOptions): string[] {
  const hosts = [...o.listen, o.httpListen, o.peerListen].flatMap((a) => {
    if (!a || a.startsWith('unix:')) return [];
    try {
      return [parseAddress(a).host];
    } catch {
      return []; // bindAll names the bad address
    }
  });
  return [...hosts, ...o.tlsSans];
}

/** The plaintext listener beside `--tls-auto` must not leave the host. */
function loopbackOnly(address: string): string {
  const { host } = parseAddress(address);
  if (host !== 'localhost' && host !== '::1' && !host.startsWith('127.'))
    throw new TransportError(`--plain-listen ${address}: a plaintext listener beside --tls-auto must be on loopback`);
  return address;
}

/** The address other peers dial: the first tcp listener, else the first one. */
function dialable({ bound }: Ports): string {
  return (bound.find((b) => b.scheme === 'tcp' || b.scheme === 'tcps') ?? bound[0])?.address ?? '';
}

/**
 * Builds what runs on the mesh (agent placement, delivery, log copies, the
 * gateway, the scheduler, housekeeping) and adds the services; health turns
 * SERVING at the end.
 */
async function serve(
  o: ControlPlaneOptions,
  log: Logger,
  state: State,
  ports: Ports,
  mesh: Mesh,
  secret: PeerSecret,
  closers: Shutdown,
): Promise<(settings: LiveSettings) => void> {
  const { store, repo, tracker, logs, registry, index, tokens } = state;
  const audit = new AuditLog(store, log);
  closers.add('audit', () => audit.close());
  const jwt = o.jwt ? await JwtVerifier.open(o.jwt) : undefined;
  // Each attempt's RUNMESH_JOB_TOKEN: minted into its Assign, checked against its stored attempt at every call.
  const jobTokens = new JobTokens(secret.derive('runmesh job token v1'), (id) => currentAttemptOf(repo, id));
  const gate = new Gate({ tokens, jwt, jobTokens, log, limits: o.limits, audit });
  const credentials = await AgentCredentials.open(store, log);
  closers.add('agent credentials', () => credentials.close());
  const rotation = new CredentialRotation(credentials, o.agentCredentialTtlMs);
  const agentAuth = new AgentAuth(new Secret(o.joinToken), credentials, tokens, (now) => rotation.expiry(now));
  // Calls are authenticated before their request is read (api/admission.ts); the guard still authorizes each.
  ports.admission.use({
    client: (method, metadata, from) =>
      gate.identify(method, metadata, from).then(
        () => undefined,
        (err: unknown) => toServiceError(err, log),
      ),
    peer: (metadata) => refusePeerCall(metadata, secret),
    agent: (metadata) =>
      agentOfCall(agentAuth, metadata).then(
        () => undefined,
        (err: unknown) => toServiceError(err, log),
      ),
  });
  // Under --tls-auto, peers on the shared listeners speak TLS, verified against the cluster CA.
  const peerTls = state.autoTls && !o.peerListen ? channelCredentials({ ca: await readFile(state.autoTls.caFile) }) : undefined;
  const clients = new PeerClients({ secret, credentials: peerTls });
  closers.add('peer clients', () => clients.close());
  mesh.onPeersChange((peers) => clients.retain(new Set(peers.map((p) => p.peerAddress))));
  const copies = new LogCopies(mesh, clients, logs, log);
  const agents = new MeshAgents(mesh, registry);
  // The agents held here hung on the lost lease: published again on the new one, before any leader counts them lost.
  mesh.onRejoined(() => agents.republish());
  const writer = JobWriter.forAnyPeer({ repo, tracker, logger: log });
  const artifactCopies = new ArtifactCopies(mesh, clients, state.artifacts, log);
  const gateway = new Gateway({
    repo,
    tracker,
    writer,
    logs,
    registry,
    index,
    logger: log,
    peerId: o.peerId,
    publisher: agents,
    replicateLog: (id, attempt, records) => copies.replicate(id, attempt, records),
    auth: agentAuth,
    rotation,
    audit,
    rotationCheckMs: rotationCheckMs(o.agentCredentialTtlMs),
    holderOf: (name) => mesh.directory.get(name)?.peerId,
    revocations: credentials,
    heartbeatIntervalMs: o.heartbeatIntervalMs,
    heartbeatTimeoutMs: o.heartbeatTimeoutMs,
  });
  closers.add('gateway', () => gateway.close());
  const dispatch = new PeerDispatch(mesh, gateway, clients, (id, attempt) => jobTokens.mint(id, attempt), state.secrets);
  const agentHealth = new HealthTracker();
  const router = new Router({ tenantWeights: o.tenantWeights, health: agentHealth });
  /** The outbound webhooks, made once the job service is (below); told of lost agents. */
  const hooksOut: { current?: OutboundHooks } = {};
  const groupSlots = new GroupSlots(store, repo, tracker);
  const scheduler = new Scheduler({
    writer: JobWriter.forLeader({ repo, tracker, logger: log }, () => mesh.fence()),
    tracker,
    index,
    agents,
    dispatcher: dispatch,
    router,
    healthFeed: new HealthFeed(agentHealth),
    isLeader: () => mesh.isLeader(),
    agentLostAfterMs: o.heartbeatTimeoutMs,
    onAgentLost: (agent, jobs, reason) => hooksOut.current?.agentLost(agent, jobs, reason),
    tracing: o.tracing,
    groupSlots,
    logger: log,
  });
  closers.add('scheduler', () => scheduler.close());
  const housekeeper = new Housekeeper({
    repo,
    store,
    groups: groupSlots,
    logs,
    artifacts: state.artifacts,
    logger: log,
    jobRetentionMs: o.jobRetentionMs,
    compactionIntervalMs: o.compactionIntervalMs,
    maxEndedJobs: o.maxEndedJobs,
    liveJobs: () => tracker.size,
    isLeader: () => mesh.isLeader(),
    fence: () => mesh.fence(),
  });
  closers.add('housekeeping', () => housekeeper.close());
  housekeeper.start();
  tracker.onDeleted((id) => void housekeeper.forget(id));
  const auditRetention = new AuditRetention({ audit, logger: log, retentionMs: o.auditRetentionMs, isLeader: () => mesh.isLeader() });
  closers.add('audit retention', () => auditRetention.close());
  auditRetention.start();
  gateway.onAgentsChanged(() => scheduler.kick());
  mesh.directory.onChange(() => scheduler.kick());
  mesh.onLeaderChange(() => scheduler.kick());
  scheduler.start();
  const needs = new NeedsRelease({
    tracker,
    repo,
    writer: JobWriter.forLeader({ repo, tracker, logger: log }, () => mesh.fence()),
    isLeader: () => mesh.isLeader(),
    logger: log,
  });
  closers.add('pipelines', () => needs.close());
  mesh.onLeaderChange(() => needs.leaderChanged());
  needs.start();

  const peerHandler: PeerHandler = {
    deliverAssign: (agent, assign) => gateway.deliverAssign(agent, assign),
    deliverCancel: (agent, cancel) => gateway.deliverCancel(agent, cancel),
    deliverDrain: (agent, drain) => gateway.deliverDrain(agent, drain),
    // A reader stops following once the agent's stream moved to another peer; the asking peer finds where.
    readLog: (read, signal) => readLocalLog({ tracker, logs, stay: (live) => copies.isHere(live, read.attempt) }, read, signal),
    copyLog: (jobId, attempt, sourcePeer, records) => copies.copyFrom(jobId, attempt, sourcePeer, records),
    listHeldArtifacts: (key) => state.artifacts.list(key),
    readArtifact: (key, path, offset, signal) => state.artifacts.read(key, path, offset, signal),
    copyArtifacts: (key, sourcePeer) => artifactCopies.copyFrom(key, sourcePeer),
  };
  const uploads = new ArtifactUploads({
    auth: agentAuth,
    tracker,
    writer,
    storage: state.artifacts,
    replicate: (key, files) => artifactCopies.replicate(key, files),
    limits: o.artifactLimits,
    onStored: (files, bytes) => state.metrics.artifactsStored(files, bytes),
    logger: log,
  });
  gateway.addToServer(ports.grpc, uploads.handlers());
  new PeerServiceImpl(peerHandler, secret, log).addToServer(ports.peer?.grpc ?? ports.grpc);
  const logLocator: LogLocator = {
    here: (record, attempt) => copies.isHere(record, attempt),
    read: (record, read, signal) => copies.read(record, read, signal),
  };
  const retention = { ageMs: o.jobRetentionMs, maxEnded: o.maxEndedJobs };
  const jobs = new JobServiceImpl({
    gate,
    repo,
    tracker,
    writer,
    logs,
    logger: log,
    cancelOnAgent: (agent, id, attempt, grace, reason) => dispatch.cancel(agent, id, attempt, grace, reason),
    waitingReason: (id) => scheduler.waitingReason(id),
    logLocator,
    admit: (records) => scheduler.admit(records),
    retention,
    secrets: state.secrets,
    tracing: o.tracing,
  });
  jobs.addToServer(ports.grpc);
  const artifacts = new ArtifactServiceImpl({ gate, repo, source: artifactCopies, retention, logger: log });
  artifacts.addToServer(ports.grpc);
  const schedules = await serveSchedules(
    { store, repo, tracker, jobs, gate, isLeader: () => mesh.isLeader(), fence: () => mesh.fence(), logger: log },
    ports.grpc,
  );
  closers.add('schedules', () => schedules.close());
  mesh.onLeaderChange(() => schedules.wake());
  new PipelineServiceImpl({ gate, repo, logger: log, cancelJob: (req, who) => jobs.cancel(req, who) }).addToServer(ports.grpc);
  const hooks = serveHooks(
    { store, keyRing: state.secrets.keyRing, jobs, tracker, gate, isLeader: () => mesh.isLeader(), logger: log },
    ports.grpc,
    ports.routes,
  );
  closers.add('hooks', () => hooks.close());
  mesh.onLeaderChange(() => hooks.kick());
  hooksOut.current = hooks;
  const hookSecrets = new HookStore(store, state.secrets.keyRing);
  new SecretServiceImpl({ gate, secrets: state.secrets, hooks: hookSecrets, logger: log }).addToServer(ports.grpc);
  new TokenServiceImpl({ gate, tokens, logger: log, caFingerprint: state.autoTls?.fingerprint ?? '' }).addToServer(ports.grpc);
  new AuditServiceImpl({ gate, audit, logger: log }).addToServer(ports.grpc);
  await serveOidc(o, log, state, ports, gate, mesh, closers);
  const cluster = new ClusterServiceImpl({
    gate,
    view: clusterView({ mesh, agents, dispatch, registry, index, scheduler, credentials, rotation }),
    tracker,
    logger: log,
    version: VERSION,
  });
  cluster.addToServer(ports.grpc);
  const metrics = state.metrics.serve({
    tracker,
    cluster,
    housekeeping: housekeeper.stats,
    queued: () => index.queued.values(),
    agentStreams: () => registry.all().filter((e) => e.link !== undefined).length,
    isLeader: () => mesh.isLeader(),
  });
  closers.add('metrics', () => metrics.close());
  const web = new Console({
    gate,
    jobs,
    artifacts,
    cluster,
    logSource: { repo, tracker, logs, locator: logLocator, retention },
    logger: log,
    tls: state.autoTls !== undefined,
    breaker: (agent) => agentHealth.state(agent, Date.now()),
    explainWait: (id) => scheduler.explain(id, (agent) => agentHealth.state(agent, Date.now()) === 'open'),
    store,
  });
  closers.add('console', () => web.close());
  ports.routes['/'] = web.route;
  ports.routes['/metrics'] = await guardMetrics(metrics.route, { httpAddress: ports.httpAddress, tokenFile: o.metricsTokenFile, log });
  if (o.webSocket && o.tls?.requireClientCert) refuseTunnel(ports.http, log);
  else if (o.webSocket) {
    const tunnel = await serveWebSocketTunnel(ports.grpc, ports.http, { path: '/agent', logger: log });
    closers.add('tunnel', () => tunnel.close());
  }
  for (const s of ['', ...SERVICES]) ports.health.setStatus(s, 'SERVING');
  return ({ tenantWeights, limits }) => {
    if (tenantWeights) router.setTenantWeights(tenantWeights); // checks first: throws before anything changed
    if (limits) gate.setLimits(limits);
    if (tenantWeights) scheduler.kick();
  };
}

/** The OIDC issuer: signing keys from the store, discovery and JWKS on the HTTP port, JobIdentityService on gRPC. */
async function serveOidc(
  o: ControlPlaneOptions,
  log: Logger,
  state: State,
  ports: Ports,
  gate: Gate,
  mesh: Mesh,
  closers: Shutdown,
): Promise<void> {
  const keys = await SigningKeys.open(state.store, keyTimes(o.oidcKeyRotationMs), log);
  closers.add('oidc keys', () => keys.close());
  const issuer = new Issuer(o.oidcIssuer || `${state.autoTls ? 'https' : 'http'}://${ports.httpAddress}`, keys);
  Object.assign(ports.routes, oidcRoutes(issuer));
  const agentLabels = (name: string): Record<string, string> => mesh.directory.get(name)?.labels ?? {};
  new IdentityServiceImpl({ gate, repo: state.repo, issuer, agentLabels, logger: log }).addToServer(ports.grpc);
}

/**
 * A server that requires client certificates on gRPC does not serve the tunnel:
 * its plain HTTP port cannot check a certificate, so the tunnel would be a way
 * around them. An upgrade to it is answered 403, saying why.
 */
function refuseTunnel(http: HttpServer, log: Logger): void {
  log.warn('WebSocket tunnel off: the gRPC listeners require client certificates, which the plain HTTP port cannot check');
  http.on('upgrade', (_req, socket: Duplex) => {
    const body = 'the WebSocket tunnel is off on this server: it requires TLS client certificates; connect with tcps://\n';
    socket.end(
      `HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  });
}

function closeHttp(http: HttpServer): Promise<void> {
  return new Promise<void>((resolve) => {
    if (!http.listening) return resolve();
    http.close(() => resolve());
    // Keep-alive connections would hold close() open; every step before this one already stopped intake.
    http.closeAllConnections();
  });
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
