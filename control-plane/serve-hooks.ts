/**
 * Webhooks on a peer: HookService on gRPC, `POST /hooks/NAME` on the HTTP
 * port (submitting templates through the job service, as TemplateService
 * does), and the outbound sender fed by the tracker (every peer queues,
 * the leader sends).
 */
import type { Server } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { JobServiceImpl } from './api/job-service.js';
import { HookServiceImpl } from './api/hook-service.js';
import type { Gate, Principal } from './auth/index.js';
import { Deliveries, HookStore, inboundRoute, HOOK_PATH, OutboundHooks, ReplayWindow, type RetryOptions } from './hooks/index.js';
import type { Route } from './http/http-server.js';
import type { JobTracker } from './jobs/tracker.js';
import type { KeyRing } from './secrets/index.js';
import { submitSpecs } from './serve-schedules.js';
import type { Store } from './store/store.js';
import { Templates } from './templates/index.js';

export interface HookParts {
  store: Store;
  keyRing: KeyRing | undefined;
  jobs: JobServiceImpl;
  tracker: JobTracker;
  gate: Gate;
  isLeader(): boolean;
  logger: Logger;
  /** Outbound retries; default DEFAULT_RETRY. */
  retry?: RetryOptions;
}

/** Adds HookService to `grpc` and the inbound route to `routes`; returns the outbound sender, started (close it at shutdown). */
export function serveHooks(p: HookParts, grpc: Server, routes: Record<string, Route>): OutboundHooks {
  const log = p.logger.child({ part: 'hooks' });
  const hooks = new HookStore(p.store, p.keyRing);
  const deliveries = new Deliveries(p.store);
  const templates = new Templates(p.store);
  new HookServiceImpl({
    gate: p.gate,
    hooks,
    deliveries,
    checkTemplate: async (tenant, name) => void (await templates.records.mustGet(tenant, name)),
    logger: log,
  }).addToServer(grpc);
  routes[HOOK_PATH] = inboundRoute({
    hooks,
    replay: new ReplayWindow(p.store),
    audit: p.gate.audit,
    logger: log,
    submit: async (hook, params) => {
      const file = await templates.fill(hook.tenant, hook.template, params);
      const who: Principal = { id: `hook:${hook.name}`, name: `webhook ${hook.name}`, role: 'submitter', tenants: [hook.tenant] };
      return submitSpecs(
        p.jobs,
        file.specs.map((s) => ({ ...s, tenant: hook.tenant })),
        file.kind,
        who,
      );
    },
  });
  const outbound = new OutboundHooks({ hooks, deliveries, isLeader: () => p.isLeader(), logger: log, retry: p.retry });
  p.tracker.subscribe((v) => outbound.jobChanged(v.record.job));
  outbound.start();
  return outbound;
}
