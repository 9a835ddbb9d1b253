/** The overview page's figures: ClusterService.Status, plus the queues per QoS class and tenant (the caller's tenants only). */
import { JobState } from '../../proto/gen/runmesh/v1/job.js';
import type { ClusterServiceImpl } from '../api/cluster-service.js';
import { canSee, type Principal } from '../auth/index.js';
import type { JobTracker } from '../jobs/tracker.js';
import type { Hub } from './hub.js';
import { qosName } from './views.js';
import type { Overview } from './wire.js';

export interface OverviewSources {
  cluster: Pick<ClusterServiceImpl, 'status'>;
  tracker: JobTracker;
  hub: Hub;
}

export function overview(s: OverviewSources, who: Principal, now = Date.now()): Overview {
  const status = s.cluster.status();
  const queues = new Map<string, { qos: string; tenant: string; queued: number; oldest: number }>();
  for (const v of s.tracker.values()) {
    const j = v.record.job;
    if (j.state !== JobState.JOB_STATE_QUEUED || !canSee(who, j.spec.tenant)) continue;
    const key = `${j.spec.qos}\u0000${j.spec.tenant}`;
    const q = queues.get(key) ?? { qos: qosName(j.spec.qos), tenant: j.spec.tenant, queued: 0, oldest: now };
    q.queued++;
    q.oldest = Math.min(q.oldest, Date.parse(j.createdAt ?? '') || now);
    queues.set(key, q);
  }
  return {
    version: status.version,
    leader: status.leader,
    peers: status.peers,
    agentsByState: status.agentsByState,
    queues: [...queues.values()]
      .map(({ qos, tenant, queued, oldest }) => ({ qos, tenant, queued, oldestAgeMs: now - oldest }))
      .sort((a, b) => a.qos.localeCompare(b.qos) || a.tenant.localeCompare(b.tenant)),
    finishedPerMinute: s.hub.finishedPerMinute(now),
    recentFailures: s.hub.recentFailures(who),
  };
}
