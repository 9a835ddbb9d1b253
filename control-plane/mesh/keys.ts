/**
 * Where the mesh keeps its state in the store. Everything sits under
 * `/runmesh/`; keys that describe something alive (a peer, its agents, the
 * leadership) hang on the holding peer's lease and vanish with it.
 */

/** `/runmesh/peers/<peerId>` = PeerInfo JSON, on the peer's lease. */
export const PEERS_PREFIX = '/runmesh/peers/';

/** Held by the scheduler leader, on its lease; its createRevision is the leader's term. */
export const LEADER_KEY = '/runmesh/leader';

/** `/runmesh/agents/<name>` = AgentRecord JSON, on the lease of the peer holding the agent's stream. */
export const AGENTS_PREFIX = '/runmesh/agents/';

/** `/runmesh/agent-config/<name>` = AgentConfig JSON, no lease: operator intent outlives sessions. */
export const AGENT_CONFIG_PREFIX = '/runmesh/agent-config/';

/**
 * `/runmesh/agent-creds/<name>` = AgentCredentialRecord JSON (the sha256 of
 * the agent's credential, never the credential), no lease: an enrolment
 * outlives sessions and peers until an operator revokes it.
 */
export const AGENT_CREDS_PREFIX = '/runmesh/agent-creds/';

export const peerKey = (peerId: string): string => `${PEERS_PREFIX}${peerId}`;
export const agentKey = (name: string): string => `${AGENTS_PREFIX}${name}`;
export const agentConfigKey = (name: string): string => `${AGENT_CONFIG_PREFIX}${name}`;
export const agentCredKey = (name: string): string => `${AGENT_CREDS_PREFIX}${name}`;

/**
 * The cluster's peer secret (base64url of 32 random bytes), no lease: created
 * once by the first peer to join, read by every later one, never handed out.
 */
export const PEER_SECRET_KEY = '/runmesh/cluster/peer-secret';
