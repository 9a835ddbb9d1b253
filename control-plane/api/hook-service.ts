/**
 * HookService: create, list and delete a tenant's webhooks, and read an
 * outbound hook's deliveries. Changing hooks is `hooks.manage`, reading them
 * `hooks.read`; a hook of another tenant is NOT_FOUND. A secret is sealed
 * before it is stored and never returned, but once when the server made it.
 */
import { randomBytes } from 'node:crypto';
import { status as Status, type Server } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  HookServiceService,
  type CreateHookRequest,
  type CreateHookResponse,
  type DeleteHookRequest,
  type DeleteHookResponse,
  type Hook,
  type ListDeliveriesRequest,
  type ListDeliveriesResponse,
  type ListHooksRequest,
  type ListHooksResponse,
} from '../../proto/gen/runmesh/v1/hook.js';
import { canSee, type Gate, type Principal } from '../auth/index.js';
import { isHooksFull, isNoHookKey, NoHookKeyError, type HookStore } from '../hooks/hook-store.js';
import type { Deliveries } from '../hooks/deliveries.js';
import { checkEvents, checkUrl } from '../hooks/outbound-events.js';
import { checkParamMap } from '../hooks/param-map.js';
import { ValidationError } from '../jobs/errors.js';
import { checkRecordName } from '../schedules/record.js';
import { Secret } from '../secret.js';
import { auditedUnary, guardedUnary } from './guard.js';
import { ApiError } from './status.js';
import { callerTenant, recordStatuses } from './tenant-records.js';

export interface HookServiceDeps {
  gate: Gate;
  hooks: HookStore;
  deliveries: Deliveries;
  /** Throws RecordNotFoundError when `tenant` has no template `name`. */
  checkTemplate(tenant: string, name: string): Promise<void>;
  logger: Logger;
}

const SECRET_BYTES = { min: 16, max: 512 };

export class HookServiceImpl {
  constructor(private readonly d: HookServiceDeps) {}

  addToServer(server: Server): void {
    const { gate, logger: log } = this.d;
    const target = (req: { name: string; tenant: string }): string => `hook ${req.tenant || '(default)'}/${req.name}`;
    server.addService(HookServiceService, {
      createHook: auditedUnary(gate, 'HookService.CreateHook', log, (req: CreateHookRequest, who) => mapped(this.create(req, who)), target),
      listHooks: guardedUnary(gate, 'HookService.ListHooks', log, (req: ListHooksRequest, who) => mapped(this.list(req, who))),
      deleteHook: auditedUnary(gate, 'HookService.DeleteHook', log, (req: DeleteHookRequest, who) => mapped(this.delete(req, who)), target),
      listDeliveries: guardedUnary(gate, 'HookService.ListDeliveries', log, (req: ListDeliveriesRequest, who) =>
        mapped(this.deliveries(req, who)),
      ),
    });
  }

  private async create(req: CreateHookRequest, who: Principal): Promise<CreateHookResponse> {
    const name = checkRecordName(req.name, 'name');
    const tenant = callerTenant(who, req.tenant, 'tenant');
    if (!this.d.hooks.enabled) throw new NoHookKeyError();
    if (Boolean(req.template) === Boolean(req.url))
      throw new ValidationError('template', 'give exactly one of template (inbound) and url (outbound)');
    const hook: Hook = {
      name,
      tenant,
      template: req.template,
      paramMap: req.template ? checkParamMap(req.paramMap) : {},
      url: req.url ? checkUrl(req.url) : '',
      events: req.url ? checkEvents(req.events) : [],
      createdAt: new Date().toISOString(),
      createdBy: who.id,
    };
    if (!req.template && Object.keys(req.paramMap).length)
      throw new ValidationError('param_map', 'only an inbound hook (template) maps parameters');
    if (req.template) await this.d.checkTemplate(tenant, checkRecordName(req.template, 'template'));
    const generated = req.secret ? '' : randomBytes(32).toString('hex');
    const secret = req.secret || generated;
    const size = Buffer.byteLength(secret);
    if (size < SECRET_BYTES.min || size > SECRET_BYTES.max)
      throw new ValidationError('secret', `${size} bytes; a hook secret is ${SECRET_BYTES.min} to ${SECRET_BYTES.max} bytes`);
    await this.d.hooks.create(hook, new Secret(secret));
    this.d.logger.info({ audit: true, hook: name, tenant, inbound: Boolean(req.template), by: who.id }, 'hook stored');
    return { hook, generatedSecret: generated };
  }

  private async list(req: ListHooksRequest, who: Principal): Promise<ListHooksResponse> {
    const hooks = await this.d.hooks.list();
    return { hooks: hooks.filter((h) => canSee(who, h.tenant) && (!req.tenant || h.tenant === req.tenant)) };
  }

  private async delete(req: DeleteHookRequest, who: Principal): Promise<DeleteHookResponse> {
    const { tenant, name } = named(req, who);
    const hook = await this.d.hooks.delete(tenant, name);
    this.d.logger.info({ audit: true, hook: name, tenant, by: who.id }, 'hook deleted');
    return { hook };
  }

  private async deliveries(req: ListDeliveriesRequest, who: Principal): Promise<ListDeliveriesResponse> {
    const { tenant, name } = named(req, who);
    const hook = await this.d.hooks.get(name);
    if (hook?.tenant !== tenant) throw new ApiError(Status.NOT_FOUND, `hook ${name} not found in tenant ${tenant}`);
    return { deliveries: await this.d.deliveries.list(name) };
  }
}

/** The tenant and name a request names; another tenant's hook is as absent as an unknown one. */
function named(req: { name: string; tenant: string }, who: Principal): { tenant: string; name: string } {
  const name = checkRecordName(req.name, 'name');
  return { tenant: callerTenant(who, req.tenant, 'tenant', () => `hook ${name}`), name };
}

async function mapped<T>(p: Promise<T>): Promise<T> {
  try {
    return await recordStatuses(p);
  } catch (err) {
    if (isNoHookKey(err)) throw new ApiError(Status.FAILED_PRECONDITION, (err as Error).message);
    if (isHooksFull(err)) throw new ApiError(Status.RESOURCE_EXHAUSTED, (err as Error).message);
    throw err;
  }
}
