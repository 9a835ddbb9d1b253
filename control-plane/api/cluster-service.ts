/** ClusterService: what operators ask of the cluster (every peer answers for all), and cordon/drain. */
import type { Server } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  AgentState,
  ClusterServiceService,
  type Agent,
  type CordonRequest,
  type DrainRequest,
  type GetAgentRequest,
  type Peer,
  type RevokeAgentRequest,
  type RevokeAgentResponse,
  type RotateAgentRequest,
  type RotateAgentResponse,
  type StatusResponse,
  type UncordonRequest,
} from '../../proto/gen/runmesh/v1/cluster.js';
import { JobState, QosClass } from '../../proto/gen/runmesh/v1/job.js';
import type { JobTracker } from '../jobs/tracker.js';
import type { Backlog } from '../../routing/index.js';
import type { Gate } from '../auth/index.js';
import { auditedUnary, guardedUnary } from './guard.js';
import { invalid, notFound } from './status.js';

/** The cluster as this peer sees it (agents on every peer, peers, leader). */
export interface ClusterView {
  agents(): Agent[];
  peers(): Peer[];
  leader(): string;
  unschedulable(): Array<{ jobId: string; reason: string }>;
  /** Queued jobs per label set they require, and the agents that could take them (routing/backlog.ts); none without. */
  backlog?(): Backlog;
  drain(name: string, reason: string): Promise<boolean>;
  setCordoned(name: string, cordoned: boolean): Promise<void>;
  /** Deletes the agent's credential (every peer then ends its stream); false when it had none. */
  revokeAgent(name: string): Promise<boolean>;
  /** Asks for the agent's credential to be rotated, and waits a few seconds for the agent to save the new one. */
  rotateAgent(name: string): Promise<RotateAgentResponse>;
}

export interface ClusterServiceDeps {
  /** Who may call what (the authorization table). */
  gate: Gate;
  view: ClusterView;
  tracker: JobTracker;
  logger: Logger;
  version: string;
}

/** The agent a cluster call touched. */
const byName = (req: { name: string }): string => req.name;

const enumName = (table: Record<number, string>, value: number, prefix: string): string =>
  (table[value] ?? String(value)).replace(prefix, '').toLowerCase();

const NO_BACKLOG: Backlog = { sets: [], omitted: { sets: 0, queued: 0 } };

function backlogOf(b: Backlog): Pick<StatusResponse, 'backlog' | 'backlogOmitted'> {
  return {
    backlog: b.sets.map((s) => ({
      selector: s.selector,
      queued: s.queued,
      agents: s.agents,
      freeSlots: s.freeSlots,
      invalid: s.invalid ?? '',
    })),
    backlogOmitted: { labelSets: b.omitted.sets, queued: b.omitted.queued },
  };
}

export class ClusterServiceImpl {
  constructor(private readonly d: ClusterServiceDeps) {}

  addToServer(server: Server): void {
    const { gate, logger: log } = this.d;
    // Agents are not any tenant's: the role decides (table.ts), not the tenant.
    server.addService(ClusterServiceService, {
      status: guardedUnary(gate, 'ClusterService.Status', log, async () => this.status()),
      listAgents: guardedUnary(gate, 'ClusterService.ListAgents', log, async () => ({ agents: this.agents() })),
      getAgent: guardedUnary(gate, 'ClusterService.GetAgent', log, async (req: GetAgentRequest) => ({ agent: this.agent(req.name) })),
      drain: auditedUnary(gate, 'ClusterService.Drain', log, async (req: DrainRequest) => this.drain(req.name), byName),
      cordon: auditedUnary(gate, 'ClusterService.Cordon', log, async (req: CordonRequest) => this.cordon(req.name, true), byName),
      uncordon: auditedUnary(gate, 'ClusterService.Uncordon', log, async (req: UncordonRequest) => this.cordon(req.name, false), byName),
      revokeAgent: auditedUnary(gate, 'ClusterService.RevokeAgent', log, async (req: RevokeAgentRequest) => this.revoke(req.name), byName),
      rotateAgent: auditedUnary(gate, 'ClusterService.RotateAgent', log, async (req: RotateAgentRequest) => this.rotate(req.name), byName),
    });
  }

  agents(): Agent[] {
    return this.d.view.agents();
  }

  private agent(name: string): Agent {
    if (!name) throw invalid('name', 'missing');
    const a = this.d.view.agents().find((x) => x.name === name);
    if (!a) throw notFound(`agent ${name.slice(0, 64)}`);
    return a;
  }

  status(): StatusResponse {
    const agentsByState: Record<string, number> = {};
    for (const a of this.d.view.agents()) {
      const k = enumName(AgentState, a.state, 'AGENT_STATE_');
      agentsByState[k] = (agentsByState[k] ?? 0) + 1;
    }
    // Kept by the tracker as jobs change: Status costs the same with a million live jobs.
    const jobsByState: Record<string, number> = {};
    for (const [state, n] of this.d.tracker.countsByState()) if (n > 0) jobsByState[enumName(JobState, state, 'JOB_STATE_')] = n;
    const classes = [QosClass.QOS_CLASS_CRITICAL, QosClass.QOS_CLASS_STANDARD, QosClass.QOS_CLASS_BATCH];
    return {
      peers: this.d.view.peers(),
      leader: this.d.view.leader(),
      agentsByState,
      queues: classes.map((qos) => ({ qos, queued: this.d.tracker.queuedCount(qos) })),
      jobsByState,
      unschedulable: this.d.view.unschedulable().slice(0, 100),
      version: this.d.version,
      ...backlogOf(this.d.view.backlog?.() ?? NO_BACKLOG),
    };
  }

  /** Drains `name` (the console calls these with its own gate check; over gRPC, addToServer's wrappers do). */
  async drain(name: string) {
    this.agent(name);
    await this.d.view.drain(name, 'drained by an operator');
    this.d.logger.info({ agent_id: name }, 'agent drain requested');
    return { agent: this.agent(name) };
  }

  async cordon(name: string, cordoned: boolean) {
    this.agent(name);
    await this.d.view.setCordoned(name, cordoned);
    this.d.logger.info({ agent_id: name, cordoned }, 'agent cordon changed');
    return { agent: { ...this.agent(name), state: cordoned ? AgentState.AGENT_STATE_CORDONED : AgentState.AGENT_STATE_READY } };
  }

  /** Works for an agent that is not connected too: revoking is about its credential, not its session. */
  async revoke(name: string): Promise<RevokeAgentResponse> {
    if (!name) throw invalid('name', 'missing');
    const revoked = await this.d.view.revokeAgent(name);
    this.d.logger.warn({ audit: true, agent_id: name, revoked }, 'agent revoke requested');
    return { revoked };
  }

  /** Works for an agent that is not connected too: it gets its new credential when it next connects. */
  private async rotate(name: string): Promise<RotateAgentResponse> {
    if (!name) throw invalid('name', 'missing');
    const res = await this.d.view.rotateAgent(name);
    this.d.logger.info({ audit: true, agent_id: name, ...res }, 'agent rotation requested');
    return res;
  }
}
