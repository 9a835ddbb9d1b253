/**
 * Agent options: user input with documented defaults becomes a fully
 * resolved type here, once.
 */
import { availableParallelism, hostname, totalmem } from 'node:os';
import type { Logger } from 'pino';
import type { Resources } from '../routing/index.js';
import { DEFAULT_SERVER } from '../transport/address.js';
import { isReservedLabel, RESERVED_LABEL_PREFIX } from '../proto/executor-labels.js';
import { DEFAULT_CACHE_MAX } from './cache/cache.js';
import { TRACING_OFF, type Tracing } from '../transport/tracing/tracing.js';

export interface AgentOptions {
  /** Control-plane addresses in order of preference (tcp, unix, ws, wss). Default ["127.0.0.1:7433"]. */
  servers: string[];
  joinToken: string;
  /** Unique agent name. Default: the host name. */
  name: string;
  labels: Record<string, string>;
  /** Default: 1 slot, all cores (millicores) and all memory (MB) of the host. */
  capacity: Resources;
  /** Workspaces and spools. Default "./.runmesh-agent". */
  workDir: string;
  /** On SIGTERM, how long running jobs may finish before they are handed back. Default 60 s. */
  shutdownGraceMs: number;
  tls: { ca?: string; cert?: string; key?: string } | undefined;
  /**
   * The cluster CA's fingerprint (`sha256:<hex>`) to pin when `tls.ca` is not
   * given: fetched on first contact into `<workDir>/ca.pem`, then verified
   * against. Default '' (no pin: system roots or `tls.ca`).
   */
  caFingerprint: string;
  /** Allow falling back from an encrypted address to a plaintext one. Default false. */
  allowInsecureFallback: boolean;
  /**
   * Keep one job supervisor booted ahead of the next Assign (~45 MB of RSS
   * while idle; a job then starts ~0.1 s sooner). Default true.
   */
  standbySupervisor: boolean;
  /**
   * How long the agent keeps running its attempts with no connection to any
   * control plane; past it they are killed, reported lost when it connects
   * again (see cut-off.ts). Default Infinity: until they end.
   */
  disconnectedGraceMs: number;
  /**
   * Run jobs as this user (name or uid) instead of the agent's own, so they
   * cannot read its credential or work dir; the agent must then be root.
   * Default '' (the agent's user).
   */
  jobUser: string;
  /** Processes and threads one attempt may have at once (its cgroup's pids limit). Default 4096. */
  pidsLimit: number;
  /** The cgroup attempts are made under. Default '' (the executor's choice: see agent/executor/cgroup.ts). */
  cgroupParent: string;
  /** false: no cgroups even where the host has them; jobs have their process group only. Default true. */
  cgroups: boolean;
  /** A JWKS file of the Ed25519 keys whose signed jobs this agent runs; it refuses every other job. Default '' (runs unsigned jobs). */
  trustedKeys: string;
  /** The job cache's size cap in bytes (agent/cache/): least recently used entries go past it. Default 5 GB. */
  cacheMaxBytes: number;
  logger: Logger;
  /** The runmesh.attempt span of each attempt, and its TRACEPARENT (attempt-trace.ts). Its owner shuts it down. Default TRACING_OFF. */
  tracing: Tracing;
}

/** A fork bomb stops here, inside its own job. */
export const DEFAULT_PIDS_LIMIT = 4096;

export type AgentInput = Partial<Omit<AgentOptions, 'capacity'>> & { joinToken: string; logger: Logger; capacity?: Partial<Resources> };

/** Labels under `runmesh.io/` are the agent's own report of itself (its executors): never given by hand. */
function ownLabels(labels: Record<string, string>): Record<string, string> {
  const reserved = Object.keys(labels).find(isReservedLabel);
  if (reserved !== undefined)
    throw new Error(
      `labels: "${reserved}" is reserved: keys under ${RESERVED_LABEL_PREFIX} are set by the agent from what its host offers`,
    );
  return labels;
}

export function resolveAgentOptions(o: AgentInput): AgentOptions {
  return {
    servers: o.servers?.length ? o.servers : [DEFAULT_SERVER],
    joinToken: o.joinToken,
    name: o.name || hostname(),
    labels: ownLabels(o.labels ?? {}),
    capacity: {
      slots: o.capacity?.slots || 1,
      cpuMillis: o.capacity?.cpuMillis ?? availableParallelism() * 1000,
      memoryMb: o.capacity?.memoryMb ?? Math.floor(totalmem() / (1024 * 1024)),
    },
    workDir: o.workDir ?? './.runmesh-agent',
    shutdownGraceMs: o.shutdownGraceMs ?? 60_000,
    tls: o.tls,
    caFingerprint: o.caFingerprint ?? '',
    allowInsecureFallback: o.allowInsecureFallback ?? false,
    standbySupervisor: o.standbySupervisor ?? true,
    disconnectedGraceMs: o.disconnectedGraceMs ?? Infinity,
    jobUser: o.jobUser ?? '',
    pidsLimit: o.pidsLimit || DEFAULT_PIDS_LIMIT,
    cgroupParent: o.cgroupParent ?? '',
    cgroups: o.cgroups ?? true,
    trustedKeys: o.trustedKeys ?? '',
    cacheMaxBytes: o.cacheMaxBytes ?? DEFAULT_CACHE_MAX,
    logger: o.logger,
    tracing: o.tracing ?? TRACING_OFF,
  };
}
