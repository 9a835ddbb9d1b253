/**
 * The mesh: how control-plane peers share one store. Membership (who is up,
 * under a lease), the scheduler leader election with its fencing term, the
 * mesh-wide agent directory, and PeerService (server and client pool) for
 * delivering placements to the peer holding an agent and reading logs held
 * elsewhere. Key layout in `keys.ts`.
 */
export * from './errors.js';
export * from './keys.js';
export { PeerMembership, DEFAULT_PEER_TTL_SECONDS, type PeerInfo, type JoinOptions } from './membership.js';
export { LeaderElection, leaderFence, type ElectionOptions, type ElectionState, type LeaderInfo } from './election.js';
export { AgentDirectory, type AgentRecord, type AgentConfig, type AgentDirectoryOptions } from './agent-directory.js';
export { PeerServiceImpl, type PeerHandler, type LogRecord } from './peer-service.js';
export { PeerClients, DEFAULT_PEER_UNARY_TIMEOUT_MS, type PeerClientsOptions } from './peer-clients.js';
