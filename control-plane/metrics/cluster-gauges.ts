/**
 * The gauges /metrics computes at scrape time from live state, from one
 * reading of it per scrape (`ScrapeState`): agents and live jobs by state,
 * queue depth per QoS class (by name) and per tenant, the age of the oldest
 * queued job, this peer's agent streams, leadership, and the backlog per
 * label set. Counts that only grow (retention) are read the same way.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { StatusResponse } from '../../proto/gen/runmesh/v1/cluster.js';
import type { QosClass, QueuedJob } from '../../routing/index.js';
import type { HousekeepingStats } from '../housekeeping.js';
import { qosName } from '../scheduler/convert.js';

/** Tenants with a queue-depth series of their own; the rest are summed under `tenant="_other"`. */
export const MAX_TENANT_SERIES = 100;

/** The label value of the label set that matches every agent (an empty selector). */
export const ANY_AGENT = '(any)';

/** What one scrape reads. */
export interface ScrapeState {
  status: StatusResponse;
  /** Queued jobs (not those waiting out a retry backoff). */
  queued: readonly QueuedJob[];
  /** When each queued job was last queued (ms), by id. */
  queuedAt(id: string): number | undefined;
  agentStreams: number;
  isLeader: boolean;
  now: number;
}

type Read = () => ScrapeState;

const QOS: readonly QosClass[] = ['critical', 'standard', 'batch'];

/** A gauge whose values are set at each scrape by `fill`. */
function gauge<L extends string>(registry: Registry, name: string, help: string, labelNames: L[], fill: (g: Gauge<L>) => void): void {
  new Gauge<L>({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      fill(this);
    },
  });
}

export function addClusterGauges(registry: Registry, read: Read): void {
  gauge(registry, 'runmesh_agents', 'Agents known to this peer, by state', ['state'], (g) => {
    for (const [state, n] of Object.entries(read().status.agentsByState)) g.set({ state }, n);
  });
  gauge(registry, 'runmesh_jobs_live', 'Non-terminal jobs, by state', ['state'], (g) => {
    for (const [state, n] of Object.entries(read().status.jobsByState)) g.set({ state }, n);
  });
  gauge(registry, 'runmesh_queue_depth', 'Queued jobs by QoS class', ['qos'], (g) => {
    for (const q of read().status.queues) g.set({ qos: qosName(q.qos) }, q.queued);
  });
  gauge(
    registry,
    'runmesh_queue_depth_by_tenant',
    `Queued jobs by tenant (the first ${MAX_TENANT_SERIES} tenants by depth; the rest as _other)`,
    ['tenant'],
    (g) => {
      for (const [tenant, n] of byTenant(read().queued)) g.set({ tenant }, n);
    },
  );
  gauge(
    registry,
    'runmesh_queue_oldest_age_seconds',
    'Age of the oldest queued job (since it was last queued), by QoS class; 0 when none',
    ['qos'],
    (g) => {
      const s = read();
      const oldest = new Map<QosClass, number>(QOS.map((q) => [q, s.now]));
      for (const j of s.queued) oldest.set(j.qos, Math.min(oldest.get(j.qos) ?? s.now, s.queuedAt(j.id) ?? s.now));
      for (const [qos, at] of oldest) g.set({ qos }, Math.max(0, s.now - at) / 1000);
    },
  );
  gauge(registry, 'runmesh_agent_streams', 'Agent streams open on this peer', [], (g) => g.set(read().agentStreams));
  gauge(registry, 'runmesh_is_leader', '1 on the peer that leads the mesh (schedules), else 0', [], (g) => g.set(read().isLeader ? 1 : 0));
  gauge(registry, 'runmesh_leader_known', '1 when this peer knows of a leader, else 0', [], (g) => g.set(read().status.leader ? 1 : 0));
  addBacklogGauges(registry, read);
}

/** Backlog per label set: at most MAX_BACKLOG_LABEL_SETS (cluster-view.ts) series per name, plus what was left out. */
function addBacklogGauges(registry: Registry, read: Read): void {
  const label = (selector: string): string => selector || ANY_AGENT;
  gauge(registry, 'runmesh_backlog_jobs', 'Queued jobs per label set they require (the largest 50 sets)', ['selector'], (g) => {
    for (const b of read().status.backlog) g.set({ selector: label(b.selector) }, b.queued);
  });
  gauge(registry, 'runmesh_backlog_agents', 'Agents that could take the jobs of a label set now', ['selector'], (g) => {
    for (const b of read().status.backlog) g.set({ selector: label(b.selector) }, b.agents);
  });
  gauge(registry, 'runmesh_backlog_free_slots', 'Free slots on the agents that could take the jobs of a label set', ['selector'], (g) => {
    for (const b of read().status.backlog) g.set({ selector: label(b.selector) }, b.freeSlots);
  });
  gauge(
    registry,
    'runmesh_backlog_omitted_label_sets',
    'Label sets with queued jobs left out of runmesh_backlog_* (past the 50 largest)',
    [],
    (g) => g.set(read().status.backlogOmitted?.labelSets ?? 0),
  );
  gauge(registry, 'runmesh_backlog_omitted_jobs', 'Queued jobs of the label sets left out of runmesh_backlog_*', [], (g) =>
    g.set(read().status.backlogOmitted?.queued ?? 0),
  );
}

function byTenant(queued: readonly QueuedJob[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const j of queued) counts.set(j.tenant, (counts.get(j.tenant) ?? 0) + 1);
  const ranked = [...counts].sort((a, b) => b[1] - a[1]);
  const out = new Map(ranked.slice(0, MAX_TENANT_SERIES));
  const rest = ranked.slice(MAX_TENANT_SERIES).reduce((n, [, c]) => n + c, 0);
  if (rest > 0) out.set('_other', rest);
  return out;
}

/** Totals kept by the housekeeper, read at scrape time. */
export function addHousekeepingMetrics(registry: Registry, kept: HousekeepingStats): void {
  const total = (name: string, help: string, read: () => number): void =>
    void new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  total('runmesh_retention_jobs_deleted_total', 'Ended jobs deleted after the retention, by this peer', () => kept.jobsDeleted);
  total('runmesh_retention_logs_deleted_total', 'Logs of deleted jobs removed from this peer', () => kept.logsDeleted);
  new Gauge({
    name: 'runmesh_store_compacted_revision',
    help: 'Revision this peer last compacted store history to (0: none yet)',
    registers: [registry],
    collect() {
      this.set(kept.compactedRevision);
    },
  });
}
