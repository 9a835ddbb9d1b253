/**
 * What a job gets to prove who it is: its attempt's job token
 * (RUNMESH_JOB_TOKEN, from the Assign) and where to present it
 * (RUNMESH_SERVER, and RUNMESH_TLS_CA for a TLS server), so `runmesh
 * id-token` and `runmesh jobs get $RUNMESH_JOB_ID` work inside the job with
 * nothing configured. The token is put only into the job's environment, never
 * into a log line of the agent's.
 */
import { join } from 'node:path';
import type { AgentOptions } from './options.js';

/** The client address a job uses: the agent's first gRPC address (ws:// and wss:// tunnels are for agents only), as the CLI takes it. */
export function clientAddressOf(servers: readonly string[]): string | undefined {
  for (const s of servers) {
    if (s.startsWith('ws://') || s.startsWith('wss://')) continue;
    return s.startsWith('tcp://') ? s.slice('tcp://'.length) : s;
  }
  return undefined;
}

/** The environment every job of this agent gets beside its token: the server, and the CA a TLS server is checked against. */
export function serverEnvOf(o: Pick<AgentOptions, 'servers' | 'tls' | 'caFingerprint' | 'workDir'>): Record<string, string> {
  const server = clientAddressOf(o.servers);
  if (server === undefined) return {};
  const ca = o.tls?.ca ?? (o.caFingerprint ? join(o.workDir, 'ca.pem') : undefined);
  return server.startsWith('tcps://') && ca ? { RUNMESH_SERVER: server, RUNMESH_TLS_CA: ca } : { RUNMESH_SERVER: server };
}

/** The identity part of an attempt's environment: nothing when the control plane sent no token. */
export function identityEnv(jobToken: string, serverEnv: Readonly<Record<string, string>>): Record<string, string> {
  return jobToken ? { ...serverEnv, RUNMESH_JOB_TOKEN: jobToken } : {};
}
