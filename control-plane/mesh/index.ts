/**
 * The mesh: how control-plane peers share one store. Membership (who is up,
 * under a lease), the scheduler leader election with its fencing term, the
 * mesh-wide agent directory, delivery of placements to the peer holding an
 * agent (`dispatch.ts`, over the PeerService client pool), and logs held
 * elsewhere (`log-copies.ts`). PeerService's server side is an API
 * (control-plane/api/peer-service.ts). Key layout in `keys.ts`.
 */
export * from './errors.js';
export * from './keys.js';
export { PeerMembership, DEFAULT_PEER_TTL_SECONDS, type PeerInfo, type JoinOptions } from './membership.js';
export { LeaderElection, leaderFence, type ElectionOptions, type ElectionState, type LeaderInfo } from './election.js';
export { AgentDirectory, type AgentRecord, type AgentConfig, type AgentDirectoryOptions } from './agent-directory.js';
export { Mesh, type MeshOptions } from './mesh.js';
export { MeshAgents } from './agents.js';
export { PeerDispatch, type LocalDelivery } from './dispatch.js';
export { LogCopies } from './log-copies.js';
export { PeerClients, DEFAULT_PEER_UNARY_TIMEOUT_MS, type PeerClientsOptions } from './peer-clients.js';
export { PeerSecret, PEER_METADATA_KEY } from './peer-secret.js';
