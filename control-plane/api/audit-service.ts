/** AuditService: admins and operators read the audit log, oldest first. */
import type { Server } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { AuditServiceService, type ListAuditRequest, type ListAuditResponse } from '../../proto/gen/runmesh/v1/audit.js';
import type { AuditLog } from '../audit/index.js';
import type { Gate } from '../auth/index.js';
import { guardedUnary } from './guard.js';
import { invalid } from './status.js';

export interface AuditServiceDeps {
  gate: Gate;
  audit: Pick<AuditLog, 'list'>;
  logger: Logger;
}

const MAX_PAGE = 1000;
/** A page token is the key of the last entry shown, without its prefix: `<ISO time>-<hex>`. */
const PAGE_TOKEN = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z-[0-9a-f]{8}$/;

export class AuditServiceImpl {
  constructor(private readonly d: AuditServiceDeps) {}

  addToServer(server: Server): void {
    const { gate, logger: log } = this.d;
    server.addService(AuditServiceService, {
      listAudit: guardedUnary(gate, 'AuditService.ListAudit', log, (req: ListAuditRequest) => this.list(req)),
    });
  }

  private async list(req: ListAuditRequest): Promise<ListAuditResponse> {
    if (req.limit < 0 || req.limit > MAX_PAGE) throw invalid('limit', `${req.limit} is not between 0 and ${MAX_PAGE}`);
    if (req.pageToken && !PAGE_TOKEN.test(req.pageToken)) throw invalid('page_token', 'not one this service gave');
    const since = req.since ? new Date(req.since) : undefined;
    if (since && Number.isNaN(since.getTime())) throw invalid('since', `"${req.since.slice(0, 64)}" is not an RFC 3339 time`);
    const page = await this.d.audit.list({
      since,
      actor: req.actor || undefined,
      limit: req.limit || 100,
      pageToken: req.pageToken || undefined,
    });
    return {
      entries: page.entries.map((e) => ({
        time: e.time,
        actor: e.actor,
        method: e.method,
        target: e.target,
        address: e.from,
        result: e.result,
      })),
      nextPageToken: page.next,
    };
  }
}
