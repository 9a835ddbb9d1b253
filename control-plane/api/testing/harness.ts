/**
 * The client-facing API on its own, for tests: JobService, ClusterService,
 * TokenService, AuditService and SecretService behind a real gate, on a real gRPC server
 * (port 0) over the real repo, tracker, writer, token store and audit log on
 * an embedded store in a temp dir. No mesh or scheduler: new jobs are stored
 * queued, as on a peer that does not lead. The cluster view is the caller's.
 */
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { pino } from 'pino';
import { tempDir } from '../../../test/support/processes.js';
import { AuditLog } from '../../audit/index.js';
import { randomBytes } from 'node:crypto';
import { DEFAULT_GATE_LIMITS, Gate, JobTokens, TokenStore, type JwtVerifier } from '../../auth/index.js';
import { currentAttemptOf } from '../../jobs/attempt-facts.js';
import { JobRepo } from '../../jobs/repo.js';
import { JobTracker } from '../../jobs/tracker.js';
import { JobWriter } from '../../jobs/writer.js';
import { LogStore } from '../../logs/log-store.js';
import { openEmbeddedStore } from '../../store/embedded.js';
import type { Store } from '../../store/store.js';
import { KeyRing, SecretStore } from '../../secrets/index.js';
import { AuditServiceImpl } from '../audit-service.js';
import { ClusterServiceImpl, type ClusterView } from '../cluster-service.js';
import { JobServiceImpl, type JobServiceDeps } from '../job-service.js';
import type { Retention } from '../status.js';
import { TokenServiceImpl } from '../token-service.js';
import { IdentityServiceImpl } from '../identity-service.js';
import { Issuer, keyTimes, SigningKeys } from '../../oidc/index.js';
import { SecretServiceImpl } from '../secret-service.js';
import { PipelineServiceImpl } from '../pipeline-service.js';
import { serveSchedules } from '../../serve-schedules.js';
import { serveHooks } from '../../serve-hooks.js';
import { HookStore } from '../../hooks/hook-store.js';
import { ArtifactServiceImpl } from '../artifact-service.js';
import { DirArtifactStorage } from '../../artifacts/dir-storage.js';
import type { ArtifactStorage } from '../../artifacts/storage.js';
import type { Route } from '../../http/http-server.js';

export interface ApiHarness {
  /** host:port of the gRPC server. */
  address: string;
  store: Store;
  repo: JobRepo;
  tracker: JobTracker;
  tokens: TokenStore;
  audit: AuditLog;
  /** Secrets, under the harness's key ring. */
  secrets: SecretStore;
  /** Writes jobs as any peer does (to assign or finish one by hand). */
  writer: JobWriter;
  /** Mints attempts' job tokens as a peer's dispatch does (with a key of this harness's own). */
  jobTokens: JobTokens;
  /** This peer's artifact storage: what ArtifactService serves (a lone peer holds every copy). */
  artifacts: ArtifactStorage;
  /** The HTTP routes a peer would serve on its HTTP port (`/hooks/`); not listening: serve them with createHttpServer. */
  httpRoutes: Record<string, Route>;
  /** Stops the server and closes everything under it. */
  close(): Promise<void>;
}

/** A cluster with no agents and one peer, p1, leading; every verb answers "nothing to do". */
export const EMPTY_CLUSTER: ClusterView = {
  agents: () => [],
  peers: () => [],
  leader: () => 'p1',
  unschedulable: () => [],
  drain: async () => false,
  setCordoned: async () => undefined,
  revokeAgent: async () => false,
  rotateAgent: async () => ({ requested: false, rotated: false }),
};

export interface ApiOptions {
  /** Default EMPTY_CLUSTER. */
  view?: ClusterView;
  /** What JobService.Cancel tells a job's agent; default: nobody is told. */
  cancelOnAgent?: JobServiceDeps['cancelOnAgent'];
  /** Default: no retention (a missing job never "may have been deleted"). */
  retention?: Retention;
  /** What ClusterService.Status reports. Default "test". */
  version?: string;
  /** JWTs accepted beside API tokens. */
  jwt?: JwtVerifier;
  /** The secrets key ring; default one random key. */
  secretsKeys?: KeyRing;
}

export async function startApi(o: ApiOptions = {}): Promise<ApiHarness> {
  const log = pino({ level: 'silent' });
  const dir = await tempDir('runmesh-api-');
  const store = await openEmbeddedStore({ dir });
  const repo = new JobRepo(store);
  const tracker = new JobTracker(repo, log);
  await tracker.start();
  const tokens = await TokenStore.open(store, log);
  const logs = new LogStore(`${dir}/logs`);
  const audit = new AuditLog(store, log);
  const secrets = new SecretStore(store, o.secretsKeys ?? KeyRing.of(randomBytes(32)));
  const jobTokens = new JobTokens(randomBytes(32), (id) => currentAttemptOf(repo, id));
  // Tests fail authentication on purpose, many times: the address slow-down is tested with limits of its own.
  const gate = new Gate({
    tokens,
    log,
    jwt: o.jwt,
    jobTokens,
    limits: { ...DEFAULT_GATE_LIMITS, authFailures: { perSecond: 1000, burst: 1000 } },
    audit,
  });
  const writer = JobWriter.forAnyPeer({ repo, tracker, logger: log });
  const server = new Server();
  const jobs = new JobServiceImpl({
    gate,
    repo,
    tracker,
    writer,
    logs,
    logger: log,
    cancelOnAgent: o.cancelOnAgent ?? (async () => false),
    waitingReason: () => undefined,
    logLocator: {
      here: () => true,
      read: () => {
        throw new Error('a peer of its own: no other peer holds a log');
      },
    },
    retention: o.retention ?? { ageMs: 0, maxEnded: 0 },
    admit: (records) => writer.create(records),
    secrets,
  });
  jobs.addToServer(server);
  const artifacts = new DirArtifactStorage(`${dir}/artifacts`);
  const retention = o.retention ?? { ageMs: 0, maxEnded: 0 };
  const source = {
    list: (key: { jobId: string; attempt: number }) => artifacts.list(key),
    read: (key: { jobId: string; attempt: number }, _holders: readonly string[], path: string, signal: AbortSignal) =>
      artifacts.read(key, path, 0, signal),
  };
  new ArtifactServiceImpl({ gate, repo, source, retention, logger: log }).addToServer(server);
  new PipelineServiceImpl({ gate, repo, logger: log, cancelJob: (req, who) => jobs.cancel(req, who) }).addToServer(server);
  new ClusterServiceImpl({ gate, view: o.view ?? EMPTY_CLUSTER, tracker, logger: log, version: o.version ?? 'test' }).addToServer(server);
  new TokenServiceImpl({ gate, tokens, logger: log, caFingerprint: '' }).addToServer(server);
  new AuditServiceImpl({ gate, audit, logger: log }).addToServer(server);
  const oidcKeys = await SigningKeys.open(store, keyTimes(7 * 24 * 3_600_000), log);
  const issuer = new Issuer('http://127.0.0.1', oidcKeys);
  new IdentityServiceImpl({ gate, repo, issuer, agentLabels: () => ({}), logger: log }).addToServer(server);
  new SecretServiceImpl({ gate, secrets, hooks: new HookStore(store, secrets.keyRing), logger: log }).addToServer(server);
  // Schedules and templates; this lone peer leads, so its ticker fires what is due.
  const schedules = await serveSchedules({ store, repo, tracker, jobs, gate, isLeader: () => true, fence: () => [], logger: log }, server);
  const httpRoutes: Record<string, Route> = {};
  const hooks = serveHooks({ store, keyRing: secrets.keyRing, jobs, tracker, gate, isLeader: () => true, logger: log }, server, httpRoutes);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    address: `127.0.0.1:${port}`,
    store,
    repo,
    tracker,
    tokens,
    audit,
    secrets,
    writer,
    jobTokens,
    artifacts,
    httpRoutes,
    async close() {
      server.forceShutdown();
      await schedules.close();
      await hooks.close();
      await oidcKeys.close();
      await audit.close();
      await tracker.close();
      await tokens.close();
      await logs.close();
      await store.close();
    },
  };
}
