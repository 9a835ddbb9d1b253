/**
 * Prometheus metrics for one control plane (its own registry: no globals).
 * Gauges are computed at scrape time from live state; counters follow the
 * job tracker's transitions.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { ClusterServiceImpl } from '../api/cluster-service.js';
import type { HousekeepingStats } from '../housekeeping.js';
import type { JobTracker } from '../jobs/tracker.js';
import { isTerminal, stateName } from '../jobs/state.js';
import type { Route } from './http-server.js';

export function createMetrics(o: { tracker: JobTracker; cluster: Pick<ClusterServiceImpl, 'status'>; housekeeping?: HousekeepingStats }): {
  route: Route;
  close(): void;
} {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'runmesh_process_' });
  new Gauge({
    name: 'runmesh_agents',
    help: 'Agents known to this peer, by state',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [state, n] of Object.entries(o.cluster.status().agentsByState)) this.set({ state }, n);
    },
  });
  new Gauge({
    name: 'runmesh_jobs_live',
    help: 'Non-terminal jobs, by state',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [state, n] of Object.entries(o.cluster.status().jobsByState)) this.set({ state }, n);
    },
  });
  new Gauge({
    name: 'runmesh_queue_depth',
    help: 'Queued jobs by QoS class',
    labelNames: ['qos'],
    registers: [registry],
    collect() {
      this.reset();
      for (const q of o.cluster.status().queues) this.set({ qos: String(q.qos) }, q.queued);
    },
  });
  const kept = o.housekeeping;
  if (kept) {
    // Totals kept by the housekeeper, read at scrape time.
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
  const finished = new Counter({
    name: 'runmesh_jobs_finished_total',
    help: 'Jobs that reached a final state',
    labelNames: ['state'],
    registers: [registry],
  });
  const unsubscribe = o.tracker.subscribe((v) => {
    const s = v.record.job.state;
    if (isTerminal(s)) finished.inc({ state: stateName(s) });
  });
  return {
    route: async (_req, res) => {
      res.writeHead(200, { 'content-type': registry.contentType }).end(await registry.metrics());
    },
    close: unsubscribe,
  };
}
