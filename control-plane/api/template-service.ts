/**
 * TemplateService: store, read and delete a tenant's templates, and fill one
 * in and submit it (SubmitTemplate), on the server, so every client (the CLI,
 * schedules, webhooks) fills them in alike. Reading is jobs.read, every change
 * and submit jobs.submit; a template of another tenant is NOT_FOUND.
 */
import type { Server } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Job, JobSpec } from '../../proto/gen/runmesh/v1/job.js';
import {
  TemplateServiceService,
  type CreateTemplateRequest,
  type CreateTemplateResponse,
  type DeleteTemplateResponse,
  type GetTemplateResponse,
  type ListTemplatesRequest,
  type ListTemplatesResponse,
  type SubmitTemplateRequest,
  type SubmitTemplateResponse,
  type Template,
} from '../../proto/gen/runmesh/v1/template.js';
import { canSee, type Gate, type Principal } from '../auth/index.js';
import { checkRecordName } from '../schedules/record.js';
import { parseTemplate, type Templates } from '../templates/index.js';
import { auditedUnary, guardedUnary } from './guard.js';
import { callerTenant, recordStatuses, type NamedRequest } from './tenant-records.js';

export interface TemplateServiceDeps {
  gate: Gate;
  templates: Templates;
  /** Submits the specs as JobService does for `who` (one: Submit; several: SubmitBatch, a pipeline). */
  submit(specs: JobSpec[], kind: 'job' | 'pipeline', who: Principal): Promise<Job[]>;
  logger: Logger;
}

export class TemplateServiceImpl {
  constructor(private readonly d: TemplateServiceDeps) {}

  addToServer(server: Server): void {
    const { gate, logger: log } = this.d;
    const target = (req: NamedRequest): string => `template ${req.tenant || '(default)'}/${req.name}`;
    server.addService(TemplateServiceService, {
      createTemplate: auditedUnary(
        gate,
        'TemplateService.CreateTemplate',
        log,
        (req: CreateTemplateRequest, who) => recordStatuses(this.create(req, who)),
        target,
      ),
      listTemplates: guardedUnary(gate, 'TemplateService.ListTemplates', log, (req: ListTemplatesRequest, who) =>
        recordStatuses(this.list(req, who)),
      ),
      getTemplate: guardedUnary(gate, 'TemplateService.GetTemplate', log, (req: NamedRequest, who) => recordStatuses(this.get(req, who))),
      deleteTemplate: auditedUnary(
        gate,
        'TemplateService.DeleteTemplate',
        log,
        (req: NamedRequest, who) => recordStatuses(this.delete(req, who)),
        target,
      ),
      submitTemplate: auditedUnary(
        gate,
        'TemplateService.SubmitTemplate',
        log,
        (req: SubmitTemplateRequest, who) => recordStatuses(this.submit(req, who)),
        (req, res: SubmitTemplateResponse | undefined) => `${target(req)}${res ? `: ${res.jobs.map((j) => j.id).join(',')}` : ''}`,
      ),
    });
  }

  private async create(req: CreateTemplateRequest, who: Principal): Promise<CreateTemplateResponse> {
    const name = checkRecordName(req.name, 'name');
    const tenant = callerTenant(who, req.tenant, 'tenant');
    const parsed = parseTemplate(req.text);
    const now = new Date().toISOString();
    const existing = req.replace ? (await this.d.templates.records.get(tenant, name))?.value : undefined;
    const template: Template = {
      name,
      tenant,
      text: req.text,
      params: parsed.params,
      kind: parsed.kind,
      createdAt: existing?.createdAt ?? now,
      createdBy: existing?.createdBy ?? who.id,
      updatedAt: now,
    };
    await this.d.templates.records.create(tenant, name, template, req.replace);
    this.d.logger.info({ audit: true, template: name, tenant, kind: parsed.kind, jobs: parsed.jobs, by: who.id }, 'template stored');
    return { template };
  }

  private async list(req: ListTemplatesRequest, who: Principal): Promise<ListTemplatesResponse> {
    if (req.tenant && !canSee(who, req.tenant)) return { templates: [] };
    const records = await this.d.templates.records.list((t) => canSee(who, t), req.tenant || undefined);
    return { templates: records.map((v) => v.value) };
  }

  private async get(req: NamedRequest, who: Principal): Promise<GetTemplateResponse> {
    const { tenant, name } = this.named(req, who);
    return { template: (await this.d.templates.records.mustGet(tenant, name)).value };
  }

  private async delete(req: NamedRequest, who: Principal): Promise<DeleteTemplateResponse> {
    const { tenant, name } = this.named(req, who);
    const template = await this.d.templates.records.delete(tenant, name);
    this.d.logger.info({ audit: true, template: name, tenant, by: who.id }, 'template deleted');
    return { template };
  }

  private async submit(req: SubmitTemplateRequest, who: Principal): Promise<SubmitTemplateResponse> {
    const { tenant, name } = this.named(req, who);
    const file = await this.d.templates.fill(tenant, name, req.params);
    const specs = file.specs.map((s) => ({ ...s, tenant }));
    const jobs = await this.d.submit(specs, file.kind, who);
    this.d.logger.info({ template: name, tenant, job_ids: jobs.map((j) => j.id), token_id: who.id }, 'template submitted');
    return { jobs };
  }

  /** The tenant and name a request names; another tenant's template is as absent as an unknown one. */
  private named(req: NamedRequest, who: Principal): { tenant: string; name: string } {
    const name = checkRecordName(req.name, 'name');
    return { tenant: callerTenant(who, req.tenant, 'tenant', () => `template ${name}`), name };
  }
}
