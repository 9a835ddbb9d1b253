/**
 * Control-plane options: user input with documented defaults becomes a fully
 * resolved type here, once; nothing downstream checks for undefined.
 */
import type { Logger } from 'pino';
import { DEFAULT_GATE_LIMITS, type GateLimits } from './auth/gate.js';
import type { JwtOptions } from './auth/jwt.js';
import { hostname } from 'node:os';
import { DEFAULT_SERVER } from '../transport/address.js';
import type { ServerTlsFiles } from '../transport/index.js';
import { DEFAULT_CONNECTION_LIMITS, type ConnectionLimits } from '../transport/connection-guard.js';
import { NO_ETCD_FLAGS, type EtcdFlags } from './store/etcd-flags.js';
import type { KeySources } from './secrets/keyring.js';
import { TRACING_OFF, type Tracing } from '../transport/tracing/tracing.js';
import { DEFAULT_ARTIFACT_LIMITS, type ArtifactLimits } from './artifacts/storage.js';

export interface ControlPlaneOptions {
  /** gRPC listen addresses (tcp host:port, unix:///path). Default ["127.0.0.1:7433"]. */
  listen: string[];
  /**
   * PeerService on a gRPC listener of its own (plaintext host:port), and only
   * there, so that operators can firewall it; "" serves it on `listen`. Default "".
   */
  peerListen: string;
  /** Plain HTTP port: /healthz, /readyz, /metrics, the WebSocket tunnel. Default "127.0.0.1:7434". */
  httpListen: string;
  /** Local state: embedded store, log blobs. Default "./.runmesh". */
  dataDir: string;
  /** `etcds://h:p,...` (TLS) or `etcd://h:p,...`; empty means the embedded store in dataDir. */
  store: string;
  /** How to reach a secured etcd: CA, client certificate, server name, user (the `--etcd-*` flags). Default none. */
  etcd: EtcdFlags;
  /** The static, multi-use join token agents may enrol with (the weaker choice; join tokens of role agent are better). */
  joinToken: string;
  /** How long an agent's credential is accepted after it is issued; it is rotated over the stream at two thirds of that. Default 30 days. */
  agentCredentialTtlMs: number;
  /** Sent to agents in Welcome. Default 2000. */
  heartbeatIntervalMs: number;
  /** An agent silent this long is disconnected; one gone this long loses its attempts. Default DEFAULT_HEARTBEAT_TIMEOUT_MS (4 s). */
  heartbeatTimeoutMs: number;
  /** Serve the agent WebSocket tunnel at ws://HTTP/agent. Default true. */
  webSocket: boolean;
  /** TLS for tcp listeners (PEM paths); a `ca` with requireClientCert makes it mTLS. */
  tls: ServerTlsFiles | undefined;
  /**
   * `--tls-auto`: a cluster CA shared through the store and a server certificate
   * of this peer's own (control-plane/tls/) serve TLS on `listen` and HTTPS (wss)
   * on `httpListen`; `tls` must be unset. Default false.
   */
  tlsAuto: boolean;
  /** With `tlsAuto`: more names (DNS or IP) the certificate is valid for, e.g. a load balancer's. Default []. */
  tlsSans: string[];
  /**
   * With `tlsAuto`: a plaintext gRPC listener on loopback for local tools ("" none).
   * Default "127.0.0.1:7435" with tlsAuto, "" without.
   */
  plainListen: string;
  /** TTL of this peer's mesh lease and of the scheduler leadership. Default 5. */
  peerTtlSeconds: number;
  /** Ended jobs (records, idempotency keys, logs) are deleted this long after they ended; 0 keeps them. Default 7 days. */
  jobRetentionMs: number;
  /** Audit log entries are deleted this long after they were made; 0 keeps them. Default 30 days. */
  auditRetentionMs: number;
  /** At most this many ended jobs are kept, the oldest submitted deleted first; 0: no cap. Default 100,000. */
  maxEndedJobs: number;
  /** The leader compacts store history this often (to one interval back); 0 never. Default 5 minutes. */
  compactionIntervalMs: number;
  /** What one attempt may store as artifacts (`--artifact-max-file`, `--artifact-max-job`, `--artifact-max-files`). Default DEFAULT_ARTIFACT_LIMITS. */
  artifactLimits: ArtifactLimits;
  /** Fair-share weights per tenant (default weight 1). */
  tenantWeights: Record<string, number>;
  /** JWTs from an identity provider, verified against its JWKS; undefined: API tokens only. */
  jwt: JwtOptions | undefined;
  /** A file holding the token /metrics asks for when the HTTP listener is not on loopback; '' none (then it refuses). */
  metricsTokenFile: string;
  /** The OIDC issuer URL, the `iss` of jobs' ID tokens; '' derives it from the bound HTTP address (`http(s)://host:port`). */
  oidcIssuer: string;
  /** How often the OIDC signing key is replaced (with an overlap, oidc/signing-keys.ts). Default 7 days. */
  oidcKeyRotationMs: number;
  /** Rate limits: calls per token, jobs per tenant, failed authentications per address. Default DEFAULT_GATE_LIMITS. */
  limits: GateLimits;
  /** Calls awaiting authentication at once (client and peer calls, agents' streams before their Hello is answered); more are UNAVAILABLE. Default 256. */
  maxUnauthenticatedCalls: number;
  /** Handshake deadline and connection caps of the gRPC listeners. Default DEFAULT_CONNECTION_LIMITS (10 s, 10,000, 1,000 per address). */
  connections: ConnectionLimits;
  /**
   * The secrets key ring's sources (`--secrets-key-file`, RUNMESH_SECRETS_KEY,
   * `--secrets-previous-key-file`). Default none: the server keeps no secrets
   * and refuses jobs that reference one.
   */
  secretKeys: KeySources;
  peerId: string;
  logger: Logger;
  /**
   * Spans of submit, schedule and dispatch (transport/tracing; the CLI makes
   * one from OTEL_*). Its owner shuts it down, not the server. Default TRACING_OFF.
   */
  tracing: Tracing;
}

/** About 100 MB of job records in etcd (its default space quota is 2 GB). */
export const DEFAULT_MAX_ENDED_JOBS = 100_000;
export const DEFAULT_JOB_RETENTION_MS = 7 * 24 * 3600_000;
export const DEFAULT_AUDIT_RETENTION_MS = 30 * 24 * 3600_000;
export const DEFAULT_COMPACTION_INTERVAL_MS = 5 * 60_000;
/** `--tls-auto`'s plaintext loopback listener: beside the default 7433 (gRPC) and 7434 (HTTP). */
export const DEFAULT_PLAIN_LISTEN = '127.0.0.1:7435';
export const DEFAULT_AGENT_CREDENTIAL_TTL_MS = 30 * 24 * 3600_000;
/**
 * Agent silence before its session is closed, and absence before its
 * attempts are lost: a silent host's jobs are re-queued within ~9 s (4 s of
 * silence, at most 0.5 s until the session's watchdog sees it, 4 s for the
 * agent to come back, a scheduler tick). Four heartbeats fit in it.
 */
export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 4_000;
/** Calls awaiting authentication at once: each holds at most its metadata and one 64 KiB message (api/admission.ts). */
export const DEFAULT_MAX_UNAUTHENTICATED_CALLS = 256;
export { DEFAULT_CONNECTION_LIMITS };

/** A week: the signing key's life, of which its last hour (at most a quarter) overlaps the next key's publication. */
export const DEFAULT_OIDC_KEY_ROTATION_MS = 7 * 24 * 3_600_000;

export type ControlPlaneInput = Partial<ControlPlaneOptions> & { logger: Logger; joinToken: string };

export function resolveOptions(o: ControlPlaneInput): ControlPlaneOptions {
  return {
    listen: o.listen?.length ? o.listen : [DEFAULT_SERVER],
    peerListen: o.peerListen ?? '',
    httpListen: o.httpListen ?? '127.0.0.1:7434',
    dataDir: o.dataDir ?? './.runmesh',
    store: o.store ?? '',
    etcd: o.etcd ?? NO_ETCD_FLAGS,
    joinToken: o.joinToken,
    agentCredentialTtlMs: o.agentCredentialTtlMs ?? DEFAULT_AGENT_CREDENTIAL_TTL_MS,
    // At least four heartbeats fit in the timeout: a short one (tests, --heartbeat-timeout 2s) must not
    // close a healthy agent's session for one late heartbeat.
    heartbeatIntervalMs:
      o.heartbeatIntervalMs ?? Math.max(100, Math.min(2000, Math.floor((o.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS) / 4))),
    heartbeatTimeoutMs: o.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS,
    webSocket: o.webSocket ?? true,
    tls: o.tls,
    tlsAuto: o.tlsAuto ?? false,
    tlsSans: o.tlsSans ?? [],
    plainListen: o.plainListen ?? (o.tlsAuto ? DEFAULT_PLAIN_LISTEN : ''),
    peerTtlSeconds: o.peerTtlSeconds ?? 5,
    jobRetentionMs: o.jobRetentionMs ?? DEFAULT_JOB_RETENTION_MS,
    auditRetentionMs: o.auditRetentionMs ?? DEFAULT_AUDIT_RETENTION_MS,
    compactionIntervalMs: o.compactionIntervalMs ?? DEFAULT_COMPACTION_INTERVAL_MS,
    maxEndedJobs: o.maxEndedJobs ?? DEFAULT_MAX_ENDED_JOBS,
    artifactLimits: o.artifactLimits ?? DEFAULT_ARTIFACT_LIMITS,
    tenantWeights: o.tenantWeights ?? {},
    limits: o.limits ?? DEFAULT_GATE_LIMITS,
    maxUnauthenticatedCalls: o.maxUnauthenticatedCalls ?? DEFAULT_MAX_UNAUTHENTICATED_CALLS,
    connections: o.connections ?? DEFAULT_CONNECTION_LIMITS,
    metricsTokenFile: o.metricsTokenFile ?? '',
    oidcIssuer: (o.oidcIssuer ?? '').replace(/\/+$/, ''),
    oidcKeyRotationMs: o.oidcKeyRotationMs ?? DEFAULT_OIDC_KEY_ROTATION_MS,
    jwt: o.jwt,
    secretKeys: o.secretKeys ?? { keyFile: '', keyEnv: '', previousKeyFiles: [] },
    // ControlPlane.start gives the one kept in the data dir (data-dir.ts) when none is given.
    peerId: o.peerId || `${hostname()}-${process.pid}`,
    logger: o.logger,
    tracing: o.tracing ?? TRACING_OFF,
  };
}
