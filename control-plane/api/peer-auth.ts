/**
 * Who may call PeerService: control-plane peers of this cluster, and nobody
 * else. One check (`guardPeerCalls`) sits in front of every handler:
 * - a call carrying the cluster's peer token passes;
 * - a wrong peer token, or none at all, is UNAUTHENTICATED;
 * - a call carrying a client bearer token or an agent credential instead is
 *   PERMISSION_DENIED: whoever it is, PeerService is not theirs.
 * Error messages never echo what was presented.
 */
import { Metadata, status as Status, type ServiceError, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { PEER_METADATA_KEY } from '../mesh/peer-secret.js';

/** Recognises the cluster's peer token (constant time). */
export interface PeerVerifier {
  matches(token: string): boolean;
}

/** Metadata an agent (or its tunnel) presents itself with; never a peer. */
const AGENT_KEY_PREFIX = 'x-runmesh-agent';
const AGENT_KEYS = new Set(['x-runmesh-join-token', 'x-runmesh-credential']);

/** Undefined when the call may proceed, else the status to refuse it with. */
export function refusePeerCall(metadata: Metadata, verifier: PeerVerifier): ServiceError | undefined {
  const presented = metadata.get(PEER_METADATA_KEY);
  if (presented.length > 0) {
    const [token] = presented;
    if (presented.length === 1 && typeof token === 'string' && verifier.matches(token)) return undefined;
    return refusal(Status.UNAUTHENTICATED, 'PeerService: the peer credential is not valid for this cluster');
  }
  if (metadata.get('authorization').length > 0) {
    return refusal(Status.PERMISSION_DENIED, 'PeerService is for control-plane peers only: a client token is not accepted');
  }
  if (Object.keys(metadata.getMap()).some((k) => k.startsWith(AGENT_KEY_PREFIX) || AGENT_KEYS.has(k))) {
    return refusal(Status.PERMISSION_DENIED, 'PeerService is for control-plane peers only: an agent credential is not accepted');
  }
  return refusal(Status.UNAUTHENTICATED, 'PeerService needs a peer credential');
}

/**
 * Wraps every handler of a service so that `refusePeerCall` runs before it.
 * Unary handlers answer the refusal through their callback; streaming ones
 * end the call with it.
 */
export function guardPeerCalls<T extends UntypedServiceImplementation>(handlers: T, verifier: PeerVerifier): T {
  const guarded: UntypedServiceImplementation = {};
  for (const [name, handler] of Object.entries(handlers)) {
    guarded[name] = (
      call: { metadata: Metadata; emit(event: 'error', err: ServiceError): boolean },
      callback?: (err: ServiceError) => void,
    ) => {
      const refused = refusePeerCall(call.metadata, verifier);
      if (!refused) return (handler as (...args: unknown[]) => void)(call, callback);
      if (callback) callback(refused);
      else call.emit('error', refused);
    };
  }
  return guarded as T;
}

function refusal(code: Status, details: string): ServiceError {
  return Object.assign(new Error(details), { code, details, metadata: new Metadata() });
}
