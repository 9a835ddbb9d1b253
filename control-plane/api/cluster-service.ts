/** ClusterService: what operators ask of the cluster, and cordon/drain. */
import type { Server } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  AgentState,
  ClusterServiceService,
  type CordonRequest,
  type DrainRequest,
  type GetAgentRequest,
  type StatusResponse,
  type UncordonRequest,
  type Agent,
  type Peer,
} from '../../proto/gen/runmesh/v1/cluster.js';
import { JobState, QosClass } from '../../proto/gen/runmesh/v1/job.js';
import type { JobTracker } from '../jobs/tracker.js';
import type { AgentEntry, AgentRegistry } from '../gateway/registry.js';
import { stateOf } from '../gateway/registry.js';
import type { ActiveIndex } from '../scheduler/active-index.js';
import { invalid, notFound, unary } from './status.js';

export interface ClusterServiceDeps {
  registry: AgentRegistry;
  index: ActiveIndex;
  tracker: JobTracker;
  logger: Logger;
  version: string;
  /** Peers of the mesh as this peer knows them. */
  peers(): Peer[];
  leader(): string;
  unschedulable(): Array<{ jobId: string; reason: string }>;
  drainAgent(name: string, reason: string): boolean;
}

const enumName = (table: Record<number, string>, value: number, prefix: string): string => (table[value] ?? String(value)).replace(prefix, '').toLowerCase();

export class ClusterServiceImpl {
  constructor(private readonly d: ClusterServiceDeps) {}

  addToServer(server: Server): void {
    const log = this.d.logger;
    server.addService(ClusterServiceService, {
      status: unary(log, async () => this.status()),
      listAgents: unary(log, async () => ({ agents: this.d.registry.all().map((e) => this.proto(e)) })),
      getAgent: unary(log, async (req: GetAgentRequest) => ({ agent: this.proto(this.agent(req.name)) })),
      drain: unary(log, async (req: DrainRequest) => this.drain(req.name)),
      cordon: unary(log, async (req: CordonRequest) => this.cordon(req.name, true)),
      uncordon: unary(log, async (req: UncordonRequest) => this.cordon(req.name, false)),
    });
  }

  private proto(e: AgentEntry): Agent {
    return this.d.registry.toProto(e, this.d.index);
  }

  private agent(name: string): AgentEntry {
    if (!name) throw invalid('name', 'missing');
    const e = this.d.registry.get(name);
    if (!e) throw notFound(`agent ${name.slice(0, 64)}`);
    return e;
  }

  status(): StatusResponse {
    const agentsByState: Record<string, number> = {};
    for (const e of this.d.registry.all()) {
      const k = enumName(AgentState, stateOf(e), 'AGENT_STATE_');
      agentsByState[k] = (agentsByState[k] ?? 0) + 1;
    }
    const depth = new Map<QosClass, number>([
      [QosClass.QOS_CLASS_CRITICAL, 0],
      [QosClass.QOS_CLASS_STANDARD, 0],
      [QosClass.QOS_CLASS_BATCH, 0],
    ]);
    const jobsByState: Record<string, number> = {};
    for (const v of this.d.tracker.values()) {
      const j = v.record.job;
      const k = enumName(JobState, j.state, 'JOB_STATE_');
      jobsByState[k] = (jobsByState[k] ?? 0) + 1;
      if (j.state === JobState.JOB_STATE_QUEUED) {
        const q = j.spec?.qos || QosClass.QOS_CLASS_STANDARD;
        depth.set(q, (depth.get(q) ?? 0) + 1);
      }
    }
    return {
      peers: this.d.peers(),
      leader: this.d.leader(),
      agentsByState,
      queues: [...depth].map(([qos, queued]) => ({ qos, queued })),
      jobsByState,
      unschedulable: this.d.unschedulable().slice(0, 100),
      version: this.d.version,
    };
  }

  private drain(name: string) {
    const e = this.agent(name);
    this.d.registry.setDraining(name);
    this.d.drainAgent(name, 'drained by an operator');
    this.d.logger.info({ agent_id: name }, 'agent drain requested');
    return { agent: this.proto(e) };
  }

  private cordon(name: string, cordoned: boolean) {
    const e = this.agent(name);
    this.d.registry.setCordoned(name, cordoned);
    this.d.logger.info({ agent_id: name, cordoned }, 'agent cordon changed');
    return { agent: this.proto(e) };
  }
}
