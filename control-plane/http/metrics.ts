/**
 * Prometheus metrics for one control plane (its own registry: no globals).
 * Gauges are computed at scrape time from live state; counters follow the
 * job tracker's transitions.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { ClusterServiceImpl } from '../api/cluster-service.js';
import type { JobTracker } from '../jobs/tracker.js';
import { isTerminal, stateName } from '../jobs/state.js';
import type { Route } from './http-server.js';

export function createMetrics(o: { tracker: JobTracker; cluster: Pick<ClusterServiceImpl, 'status'> }): { route: Route; close(): void } {
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
  const finished = new Counter({ name: 'runmesh_jobs_finished_total', help: 'Jobs that reached a final state', labelNames: ['state'], registers: [registry] });
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
