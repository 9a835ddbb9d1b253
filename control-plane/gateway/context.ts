/** What an agent session needs from the control plane: narrow, so sessions stay testable. */
import type { Logger } from 'pino';
import type { Hello } from '../../proto/gen/runmesh/v1/agent.js';
import type { JobRepo } from '../jobs/repo.js';
import type { JobTracker } from '../jobs/tracker.js';
import type { JobWriter } from '../jobs/writer.js';
import type { LogStore } from '../logs/log-store.js';
import type { ActiveIndex } from '../scheduler/active-index.js';
import type { AgentAuth } from './auth.js';
import type { AgentLink, AgentRegistry } from './registry.js';
import type { CredentialRotation } from './rotation.js';

export interface GatewayContext {
  repo: JobRepo;
  tracker: JobTracker;
  writer: JobWriter;
  index: ActiveIndex;
  registry: AgentRegistry;
  logs: LogStore;
  auth: AgentAuth;
  rotation: CredentialRotation;
  /**
   * The stored audit trail: enrolments, rotations and refused connections.
   * auth/audit-sink.ts's AuditSink, by shape: gateway/ is below auth/ (auth's
   * join tokens use gateway's types), so it cannot import it.
   */
  audit: { record(entry: { actor: string; method: string; target: string; from: string; result: string }): void };
  logger: Logger;
  /** This peer, recorded as the holder of the logs of the results it accepts. */
  peerId: string;
  /** Copies a sealed log held here to a second peer; resolves with the peers holding it (this one first). */
  replicateLog(jobId: string, attempt: number, records: number): Promise<string[]>;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  /**
   * Claims the agent's identity for `link` (one identity, one session):
   * undefined when granted, else why it is refused (a live session holds it,
   * here or on another peer). A session silent past the heartbeat timeout
   * loses its claim to the new one. Released when `link` disconnects.
   */
  claim(name: string, link: AgentLink): string | undefined;
  onConnect(hello: Hello, link: AgentLink): void;
  onDisconnect(name: string, link: AgentLink): void;
}
