/**
 * Templates of a tenant, stored as their YAML text (the job spec file format,
 * control-plane/pipelines/spec-file.ts) and filled in on the server: by TemplateService.SubmitTemplate,
 * and by schedules at each tick.
 */
import { Template } from '../../proto/gen/runmesh/v1/template.js';
import type { Store } from '../store/store.js';
import { TenantRecords } from '../store/tenant-records.js';
import type { SpecFile } from '../pipelines/spec-file.js';
import { fillTemplate, parseTemplate, type ParsedTemplate } from './template.js';

export { parseTemplate, fillTemplate, TEMPLATE_LIMITS, type ParsedTemplate } from './template.js';
export type { SpecFile } from '../pipelines/spec-file.js';

/** Templates per tenant, at most. */
export const TEMPLATES_PER_TENANT = 200;

export class Templates {
  readonly records: TenantRecords<Template>;

  constructor(store: Store, prefix = '/runmesh/') {
    this.records = new TenantRecords(store, {
      prefix: `${prefix}templates/`,
      kind: 'template',
      perTenant: TEMPLATES_PER_TENANT,
      encode: (t) => JSON.stringify(Template.toJSON(t)),
      decode: (text) => Template.fromJSON(JSON.parse(text)),
    });
  }

  /** The specs template `name` of `tenant` makes with `params`; RecordNotFoundError, or a ValidationError naming the parameter. */
  async fill(tenant: string, name: string, params: Readonly<Record<string, string>>): Promise<SpecFile> {
    const t = (await this.records.mustGet(tenant, name)).value;
    return fillTemplate(this.parsed(t), params, name);
  }

  /** A stored template's text, parsed (it was checked when stored). */
  private parsed(t: Template): ParsedTemplate {
    return parseTemplate(t.text);
  }
}
