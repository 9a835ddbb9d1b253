/**
 * Delivers what the scheduler and the API decide (assign, cancel, drain) to
 * the peer holding the agent's stream: this one, through its gateway, or
 * another, through PeerService. False when no live peer holds the agent.
 */
import type { Assign, Cancel, Drain } from '../../proto/gen/runmesh/v1/agent.js';
import type { JobRecord } from '../jobs/record.js';
import type { Dispatcher } from '../scheduler/scheduler.js';
import type { Mesh } from './mesh.js';
import { resolveSecrets, type SecretStore } from '../secrets/index.js';
import type { PeerClients } from './peer-clients.js';
import type { TraceContext } from '../../transport/tracing/carrier.js';

/** What this peer can deliver itself: the gateway, for the agents whose streams it holds. */
export interface LocalDelivery {
  deliverAssign(agent: string, assign: Assign): boolean;
  deliverCancel(agent: string, cancel: Cancel): boolean;
  deliverDrain(agent: string, drain: Drain): boolean;
}

/** Mints an attempt's job token (auth/job-tokens.ts), sent in its Assign and never stored. */
export type MintJobToken = (jobId: string, attempt: number) => string;

/** Who holds an agent's stream. */
type Holder = { kind: 'self' } | { kind: 'peer'; address: string };

export class PeerDispatch implements Dispatcher {
  constructor(
    private readonly mesh: Mesh,
    private readonly local: LocalDelivery,
    private readonly clients: PeerClients,
    private readonly mintJobToken: MintJobToken,
    /** Where the job's secret references are looked up, for this attempt's Assign only. */
    private readonly secrets: SecretStore,
  ) {}

  async assign(agent: string, record: JobRecord, trace?: TraceContext): Promise<boolean> {
    const { id, attempt, spec } = record.job;
    const deadline = new Date(Date.now() + spec.timeoutSeconds * 1000).toISOString();
    // Resolved at each delivery, never stored: a secret changed since submit gives its new value, one deleted fails the attempt (scheduler.ts).
    const secrets = await resolveSecrets(this.secrets, spec.tenant, spec.secrets);
    const msg: Assign = {
      jobId: id,
      attempt,
      spec,
      deadline,
      jobToken: this.mintJobToken(id, attempt),
      ...secrets,
      traceParent: trace?.traceparent ?? '',
      traceState: trace?.tracestate ?? '',
    };
    const at = this.holder(agent);
    if (!at) return false;
    return at.kind === 'self' ? this.local.deliverAssign(agent, msg) : this.clients.deliverAssign(at.address, agent, msg);
  }

  async cancel(agent: string, jobId: string, attempt: number, graceSeconds: number, reason: string): Promise<boolean> {
    const msg: Cancel = { jobId, attempt, graceSeconds, reason };
    const at = this.holder(agent);
    if (!at) return false;
    return at.kind === 'self' ? this.local.deliverCancel(agent, msg) : this.clients.deliverCancel(at.address, agent, msg);
  }

  async drain(agent: string, reason: string): Promise<boolean> {
    const msg: Drain = { reason };
    const at = this.holder(agent);
    if (!at) return false;
    return at.kind === 'self' ? this.local.deliverDrain(agent, msg) : this.clients.deliverDrain(at.address, agent, msg);
  }

  private holder(agent: string): Holder | undefined {
    const r = this.mesh.directory.get(agent);
    if (!r) return undefined;
    if (r.peerId === this.mesh.peerId) return { kind: 'self' };
    const address = this.mesh.peer(r.peerId)?.peerAddress;
    return address ? { kind: 'peer', address } : undefined;
  }
}
