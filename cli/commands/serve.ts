/** `runmesh server`: one control-plane peer. */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { DEFAULT_GATE_LIMITS, type GateLimits } from '../../control-plane/auth/gate.js';
import type { JwtOptions } from '../../control-plane/auth/jwt.js';
import {
  DEFAULT_AGENT_CREDENTIAL_TTL_MS,
  DEFAULT_AUDIT_RETENTION_MS,
  DEFAULT_COMPACTION_INTERVAL_MS,
  DEFAULT_HEARTBEAT_TIMEOUT_MS,
  DEFAULT_CONNECTION_LIMITS,
  DEFAULT_JOB_RETENTION_MS,
  DEFAULT_OIDC_KEY_ROTATION_MS,
  DEFAULT_MAX_ENDED_JOBS,
  DEFAULT_MAX_UNAUTHENTICATED_CALLS,
  DEFAULT_PLAIN_LISTEN,
} from '../../control-plane/options.js';
import { formatJoinString } from '../../agent/join-string.js';
import {
  addresses,
  collectList,
  durationMs,
  durationOption,
  hostPort,
  logLevel,
  positiveDurationMs,
  tenantWeights,
  whole,
} from '../flags.js';
import { UsageError } from '../errors.js';
import { parseSize } from '../../agent/cache/cache.js';
import { DEFAULT_ARTIFACT_LIMITS, type ArtifactLimits } from '../../control-plane/artifacts/storage.js';
import { collect, parseWhole } from '../options.js';
import { keepRunningWhenOutputCloses } from '../pipes.js';
import { holdHangup, reloadOnHangup } from '../reload.js';
import { useConfigFile } from '../config-file.js';
import { argsAfter, systemdUnit } from '../systemd.js';

/** The join token: given, or the one kept in the data dir, or a new one saved there. */
export async function joinTokenFor(dataDir: string, given: string | undefined): Promise<{ token: string; generated: boolean }> {
  if (given) return { token: given, generated: false };
  const path = join(dataDir, 'join-token');
  const saved = await readFile(path, 'utf8').catch(() => '');
  if (saved.trim()) return { token: saved.trim(), generated: false };
  const token = `rmj_${randomBytes(18).toString('base64url')}`;
  await mkdir(dataDir, { recursive: true });
  await writeFile(path, `${token}\n`, { mode: 0o600 });
  return { token, generated: true };
}

interface ServerFlags extends ArtifactFlags {
  listen: string[];
  httpListen: string;
  peerListen?: string;
  dataDir: string;
  store?: string;
  etcdCa?: string;
  etcdCert?: string;
  etcdKey?: string;
  etcdServerName?: string;
  etcdUser?: string;
  etcdPasswordFile?: string;
  joinToken?: string;
  heartbeatTimeout: number;
  agentCredentialTtl: number;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  tlsRequireClientCert?: boolean;
  tlsAuto?: boolean;
  tlsSan: string[];
  plainListen?: string;
  websocket: boolean;
  tenantWeight: string[];
  rateToken: number;
  metricsTokenFile?: string;
  secretsKeyFile?: string;
  secretsPreviousKeyFile: string[];
  jwksFile?: string;
  jwksUrl?: string;
  jwtIssuer?: string;
  jwtAudience?: string;
  jwtRoleClaim: string;
  jwtTenantsClaim: string;
  rateTenant: number;
  maxUnauthenticatedCalls: number;
  handshakeTimeout: number;
  maxConnections: number;
  maxConnectionsPerAddress: number;
  peerId?: string;
  peerTtl: number;
  jobRetention: number;
  auditRetention: number;
  oidcIssuer?: string;
  oidcKeyRotation: number;
  compactionInterval: number;
  maxEndedJobs: number;
  logLevel?: string;
  printSystemdUnit?: boolean;
}

export function registerServe(program: Command): void {
  const server = program
    .command('server')
    .description('run a control-plane peer')
    .option('--listen <addr>', 'gRPC address (repeatable): host:port or unix:///path', addresses('--listen'), [])
    .option(
      '--oidc-issuer <url>',
      "jobs' ID tokens' issuer, where /.well-known/openid-configuration is served (default: http(s)://<--http-listen>)",
    )
    .addOption(
      durationOption(
        '--oidc-key-rotation <duration>',
        'replace the ID-token signing key this often, with an overlap',
        durationMs,
        DEFAULT_OIDC_KEY_ROTATION_MS,
      ),
    )
    .option(
      '--http-listen <addr>',
      'HTTP address for /healthz, /readyz, /metrics and the ws tunnel',
      hostPort('--http-listen'),
      '127.0.0.1:7434',
    )
    .option(
      '--peer-listen <addr>',
      "serve PeerService (peers' calls to each other) only on this host:port, to firewall it (default: on --listen)",
      hostPort('--peer-listen'),
    )
    .option('--data-dir <dir>', 'local state: embedded store, logs', './.runmesh')
    .option('--store <url>', 'etcds://host:port[,host:port] (TLS) or etcd://... (plaintext); default: embedded store in the data dir')
    .option('--etcd-ca <file>', "with etcds://: CA that signs etcd's certificate (PEM; default: the system's roots)")
    .option('--etcd-cert <file>', "with etcds://: client certificate for etcd's --client-cert-auth (PEM)")
    .option('--etcd-key <file>', 'with etcds://: key of --etcd-cert (PEM)')
    .option('--etcd-server-name <name>', "with etcds://: the name etcd's certificate carries, when the addresses differ")
    .option('--etcd-user <name>', "etcd's own authentication: the user (with --etcd-password-file)")
    .option('--etcd-password-file <file>', 'file holding the password of --etcd-user')
    .option('--join-token <token>', 'token agents must present (default: generated, kept in the data dir)', process.env.RUNMESH_JOIN_TOKEN)
    .addOption(
      durationOption(
        '--heartbeat-timeout <duration>',
        'agent silence before its session ends, and absence before its jobs are lost',
        durationMs,
        DEFAULT_HEARTBEAT_TIMEOUT_MS,
      ),
    )
    .addOption(
      durationOption(
        '--agent-credential-ttl <duration>',
        "how long an agent's credential is accepted; it is rotated over the agent's stream at two thirds of that",
        positiveDurationMs('--agent-credential-ttl'),
        DEFAULT_AGENT_CREDENTIAL_TTL_MS,
      ),
    )
    .option('--tls-cert <file>', 'server certificate (PEM)')
    .option('--tls-key <file>', 'server key (PEM)')
    .option('--tls-ca <file>', 'CA for client certificates (PEM)')
    .option('--tls-require-client-cert', 'require client certificates (mTLS)')
    .option(
      '--tls-auto',
      'TLS without certificate files: a cluster CA kept in the store signs this peer a certificate (in <data-dir>/tls); serves tcps on --listen and https/wss on --http-listen',
    )
    .option('--tls-san <name>', 'with --tls-auto: another DNS name or IP the certificate names (repeatable)', collectList, [])
    .option(
      '--plain-listen <addr>',
      `with --tls-auto: plaintext gRPC for local tools on this loopback host:port ("" for none; default ${DEFAULT_PLAIN_LISTEN})`,
    )
    .option('--no-websocket', 'do not serve the agent WebSocket tunnel at /agent')
    .addOption(durationOption('--peer-ttl <duration>', 'lease of this peer in the mesh, and of the scheduler leadership', durationMs, 5000))
    .option('--peer-id <id>', "this peer's name in the mesh (default: the one kept in <data-dir>/peer-id, made at the first start)")
    .option('--tenant-weight <tenant=weight>', 'fair-share weight (repeatable)', tenantWeightList, [])
    .option(
      '--secrets-key-file <file>',
      "the key tenants' secrets are encrypted with: 32 bytes, raw, hex or base64 (or RUNMESH_SECRETS_KEY); without one the server keeps no secrets",
    )
    .option(
      '--secrets-previous-key-file <file>',
      'an earlier secrets key, only to decrypt, until `runmesh secrets rotate-key` re-encrypted everything (repeatable)',
      collect,
      [],
    )
    .option('--jwks-file <file>', 'accept JWTs signed by a key of this JWKS (JSON) beside API tokens')
    .option('--jwks-url <url>', 'accept JWTs signed by a key of the JWKS at this URL')
    .option('--jwt-issuer <iss>', 'the issuer JWTs must name')
    .option('--jwt-audience <aud>', 'the audience JWTs must name')
    .option('--jwt-role-claim <claim>', 'the claim holding the role', 'runmesh_role')
    .option(
      '--jwt-tenants-claim <claim>',
      'the claim holding the tenants (array, or names separated by spaces or commas)',
      'runmesh_tenants',
    )
    .option('--metrics-token-file <file>', 'the token /metrics asks for when --http-listen is not on loopback')
    .option(
      '--rate-token <n>',
      'calls per second each token may make (bursts of twice that)',
      (t: string) => parseWhole('--rate-token', t, 1, 1_000_000),
      DEFAULT_GATE_LIMITS.perToken.perSecond,
    )
    .option(
      '--rate-tenant <n>',
      'jobs per second each tenant may submit (bursts of four times that)',
      (t: string) => parseWhole('--rate-tenant', t, 1, 1_000_000),
      DEFAULT_GATE_LIMITS.perTenant.perSecond,
    )
    .option(
      '--max-unauthenticated-calls <n>',
      'calls awaiting authentication at once; more are refused UNAVAILABLE',
      (t: string) => parseWhole('--max-unauthenticated-calls', t, 1, 1_000_000),
      DEFAULT_MAX_UNAUTHENTICATED_CALLS,
    )
    .addOption(
      durationOption(
        '--handshake-timeout <duration>',
        'close a gRPC connection that has not finished its TLS and HTTP/2 handshake in this time',
        positiveDurationMs('--handshake-timeout'),
        DEFAULT_CONNECTION_LIMITS.handshakeTimeoutMs,
      ),
    )
    .option(
      '--max-connections <n>',
      'open gRPC connections, in all; more are closed at once',
      (t: string) => parseWhole('--max-connections', t, 1, 10_000_000),
      DEFAULT_CONNECTION_LIMITS.maxConnections,
    )
    .option(
      '--max-connections-per-address <n>',
      'open gRPC connections from one client IP address; more are closed at once',
      (t: string) => parseWhole('--max-connections-per-address', t, 1, 10_000_000),
      DEFAULT_CONNECTION_LIMITS.maxConnectionsPerAddress,
    );
  artifactOptions(retentionOptions(server))
    .addOption(
      durationOption(
        '--compaction-interval <duration>',
        "compact the store's history this often, keeping one interval (0: leave it to etcd's --auto-compaction-retention)",
        durationMs,
        DEFAULT_COMPACTION_INTERVAL_MS,
      ),
    )
    .option('--log-level <level>', 'trace|debug|info|warn|error', (v: string) => logLevel(v), process.env.RUNMESH_LOG_LEVEL ?? 'info')
    .option('--print-systemd-unit', 'print a hardened systemd unit that runs this command with these flags, and exit')
    .action(async (f: ServerFlags, command: Command) => {
      if (f.printSystemdUnit) {
        const args = argsAfter(process.argv, 'server');
        const defaulted = command.getOptionValueSource('dataDir') === 'default';
        process.stdout.write(systemdUnit({ command: 'server', args, stateDir: f.dataDir, stateDirDefaulted: defaulted }));
        return;
      }
      keepRunningWhenOutputCloses();
      const limits = limitsOf(f);
      const { createLogger } = await import('../logging.js'); // pino: see cli/program.ts
      const logger = createLogger(f.logLevel);
      const starting = holdHangup(logger); // until the control plane is up, SIGHUP must not end the process
      const { token, generated } = await joinTokenFor(f.dataDir, f.joinToken);
      const { ControlPlane } = await import('../../control-plane/server.js'); // see cli/program.ts: loaded by the command that runs it
      const tracing = await (await import('../../transport/tracing/setup.js')).startTracing(process.env, 'runmesh-server', logger);
      const cp = await ControlPlane.start({
        listen: f.listen,
        httpListen: f.httpListen,
        peerListen: f.peerListen ?? '',
        dataDir: f.dataDir,
        store: f.store ?? '',
        etcd: {
          ca: f.etcdCa ?? '',
          cert: f.etcdCert ?? '',
          key: f.etcdKey ?? '',
          serverName: f.etcdServerName ?? '',
          user: f.etcdUser ?? '',
          passwordFile: f.etcdPasswordFile ?? '',
        },
        joinToken: token,
        heartbeatTimeoutMs: f.heartbeatTimeout,
        agentCredentialTtlMs: f.agentCredentialTtl,
        webSocket: f.websocket,
        tls: tlsOf(f),
        tlsAuto: !!f.tlsAuto,
        tlsSans: f.tlsSan,
        plainListen: f.plainListen,
        peerId: f.peerId,
        peerTtlSeconds: Math.max(1, Math.round(f.peerTtl / 1000)),
        jobRetentionMs: f.jobRetention,
        auditRetentionMs: f.auditRetention,
        oidcIssuer: f.oidcIssuer,
        oidcKeyRotationMs: f.oidcKeyRotation,
        compactionIntervalMs: f.compactionInterval,
        maxEndedJobs: f.maxEndedJobs,
        artifactLimits: artifactLimitsOf(f),
        tenantWeights: tenantWeights(f.tenantWeight),
        metricsTokenFile: f.metricsTokenFile,
        secretKeys: {
          keyFile: f.secretsKeyFile ?? '',
          keyEnv: process.env.RUNMESH_SECRETS_KEY ?? '',
          previousKeyFiles: f.secretsPreviousKeyFile,
        },
        jwt: jwtOptions(f),
        limits,
        maxUnauthenticatedCalls: f.maxUnauthenticatedCalls,
        tracing,
        connections: {
          handshakeTimeoutMs: f.handshakeTimeout,
          maxConnections: f.maxConnections,
          maxConnectionsPerAddress: f.maxConnectionsPerAddress,
        },
        logger,
      });
      // Listening before the ready line: whoever reads it may signal at once.
      const stopped = untilSignal();
      process.stderr.write(`runmesh server: gRPC ${cp.grpcAddresses.join(', ')}, http ${cp.httpAddress}\n`);
      if (generated) process.stderr.write(`join token (saved in ${join(f.dataDir, 'join-token')}): ${token}\n`);
      if (cp.autoTls) {
        process.stderr.write(`cluster CA ${cp.autoTls.fingerprint} (${cp.autoTls.caFile}); agents pin it with a join string:\n`);
        process.stderr.write(
          `  runmesh agent --server tcps://<this host>:<port> --join-token ${generated ? formatJoinString(token, cp.autoTls.fingerprint) : `<token>@${cp.autoTls.fingerprint}`}\n`,
        );
      }
      // The token itself is not printed: it is the cluster's first admin credential.
      if (cp.adminTokenFile)
        process.stderr.write(`admin token written to ${cp.adminTokenFile} (mode 0600); use it with --token or RUNMESH_TOKEN\n`);
      // SIGHUP: tenant weights, rate limits and the log level change live; the rest needs a restart.
      starting();
      reloadOnHangup(command, logger, {
        live: ['tenantWeight', 'rateToken', 'rateTenant'],
        prepare: (next, changed) => {
          const settings = {
            tenantWeights: changed.has('tenantWeight') ? tenantWeights(next.tenantWeight as string[]) : undefined,
            limits: changed.has('rateToken') || changed.has('rateTenant') ? limitsOf(next as unknown as ServerFlags) : undefined,
          };
          return () => cp.reconfigure(settings);
        },
      });
      // A lost lease (the store unreachable for a while) does not end the server: it is degraded and rejoins by itself.
      await stopped;
      await cp.close();
      await tracing.shutdown();
    });
  useConfigFile(server);
}

/** `--tenant-weight` values, each checked as it is parsed (so a bad one in --config is reported at its line). */
function tenantWeightList(value: string, previous: string[] = []): string[] {
  const all = collectList(value, previous);
  tenantWeights(all.slice(previous.length));
  return all;
}

/** The gate's limits from --rate-token and --rate-tenant. */
function limitsOf(f: Pick<ServerFlags, 'rateToken' | 'rateTenant'>): GateLimits {
  return {
    ...DEFAULT_GATE_LIMITS,
    perToken: { perSecond: f.rateToken, burst: 2 * f.rateToken },
    perTenant: { perSecond: f.rateTenant, burst: Math.max(4 * f.rateTenant, 10_000) },
  };
}

function tlsOf(f: ServerFlags) {
  if (f.tlsAuto && (f.tlsCert || f.tlsKey || f.tlsCa))
    throw new UsageError('--tls-auto makes its own certificates: give it without --tls-cert, --tls-key and --tls-ca');
  if ((f.plainListen !== undefined || f.tlsSan.length > 0) && !f.tlsAuto)
    throw new UsageError('--plain-listen and --tls-san go with --tls-auto');
  if (!f.tlsCert && !f.tlsKey) return undefined;
  if (!f.tlsCert || !f.tlsKey) throw new UsageError('--tls-cert and --tls-key go together');
  return { cert: f.tlsCert, key: f.tlsKey, ca: f.tlsCa, requireClientCert: !!f.tlsRequireClientCert };
}

/** `runmesh dev`'s secrets key: made once in the data dir (mode 0600), so its secrets survive a restart. */
export async function devSecretsKeyFile(dataDir: string): Promise<string> {
  const path = join(dataDir, 'secrets.key');
  await mkdir(dataDir, { recursive: true });
  await writeFile(path, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600, flag: 'wx' }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  return path;
}

/** Resolves on the first SIGTERM or SIGINT. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals): void => {
      process.off('SIGTERM', on);
      process.off('SIGINT', on);
      resolve(sig);
    };
    process.on('SIGTERM', on);
    process.on('SIGINT', on);
  });
}

/** What `server` and `dev` both take about the artifacts one attempt may store. */
export interface ArtifactFlags {
  artifactMaxFile?: number;
  artifactMaxJob?: number;
  artifactMaxFiles?: number;
}

export function artifactOptions(command: Command): Command {
  return command
    .option(
      '--artifact-max-file <size>',
      'largest artifact file a job may store, e.g. 500MB (default 1GiB)',
      sizeFlag('--artifact-max-file'),
    )
    .option('--artifact-max-job <size>', "most artifact bytes one job's attempt may store (default 10GiB)", sizeFlag('--artifact-max-job'))
    .option('--artifact-max-files <n>', "most artifact files one job's attempt may store (default 1000)", whole('--artifact-max-files'));
}

export function artifactLimitsOf(f: ArtifactFlags): ArtifactLimits {
  return {
    fileBytes: f.artifactMaxFile ?? DEFAULT_ARTIFACT_LIMITS.fileBytes,
    jobBytes: f.artifactMaxJob ?? DEFAULT_ARTIFACT_LIMITS.jobBytes,
    files: f.artifactMaxFiles ?? DEFAULT_ARTIFACT_LIMITS.files,
  };
}

function sizeFlag(flag: string): (text: string) => number {
  return (text) => {
    try {
      const n = parseSize(text);
      if (n < 1) throw new Error(`"${text}" is not a size of at least 1 byte`);
      return n;
    } catch (err) {
      throw new UsageError(`${flag}: ${(err as Error).message}`);
    }
  };
}

/** What `server` and `dev` both take about how long ended jobs, and audit entries, are kept. */
export function retentionOptions(command: Command): Command {
  return command
    .addOption(
      durationOption(
        '--job-retention <duration>',
        'delete ended jobs and their logs this long after they ended (0: keep them)',
        durationMs,
        DEFAULT_JOB_RETENTION_MS,
      ),
    )
    .addOption(
      durationOption(
        '--audit-retention <duration>',
        'delete audit log entries this long after they were made (0: keep them)',
        durationMs,
        DEFAULT_AUDIT_RETENTION_MS,
      ),
    )
    .option(
      '--max-ended-jobs <n>',
      'keep at most this many ended jobs, deleting the oldest first (0: no cap)',
      whole('--max-ended-jobs'),
      DEFAULT_MAX_ENDED_JOBS,
    );
}

/** The JWT settings, when a JWKS is given; a JWKS without an issuer and an audience is a usage error. */
function jwtOptions(f: ServerFlags): JwtOptions | undefined {
  if (!f.jwksFile && !f.jwksUrl) return undefined;
  if (f.jwksFile && f.jwksUrl) throw new UsageError('--jwks-file and --jwks-url: give one');
  if (!f.jwtIssuer || !f.jwtAudience) throw new UsageError('--jwks-file/--jwks-url need --jwt-issuer and --jwt-audience');
  return {
    jwksFile: f.jwksFile ?? '',
    jwksUrl: f.jwksUrl ?? '',
    issuer: f.jwtIssuer,
    audience: f.jwtAudience,
    roleClaim: f.jwtRoleClaim,
    tenantsClaim: f.jwtTenantsClaim,
  };
}
