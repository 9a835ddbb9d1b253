/**
 * `runmesh templates create | ls | get | rm`: a tenant's job and pipeline
 * templates (README "Templates"). `runmesh submit --template NAME --param
 * k=v` submits one, filled in on the server.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { Template } from '../../proto/gen/runmesh/v1/template.js';
import { unary, withConnection } from '../client.js';
import { UsageError } from '../errors.js';
import { indent, keyValues, printJson, table } from '../format.js';
import { serverOption, tokenOption, type Target } from '../options.js';

type Options = Target & { tenant?: string; json?: boolean };

export function registerTemplates(program: Command): void {
  const templates = program.command('templates').description("a tenant's job and pipeline templates, with parameters");
  templates
    .command('create')
    .description('store a template from a YAML file: params, then one job or a pipeline (jobs:), with ${{ params.NAME }} in string values')
    .argument('<name>', "letters, digits, '.', '_' and '-', at most 63")
    .requiredOption('-f, --file <spec.yaml>', 'the template file')
    .option('--replace', 'replace a template of that name')
    .option('--tenant <tenant>', "the template's tenant (default: the token's only tenant)")
    .addOption(serverOption())
    .addOption(tokenOption())
    .option('--json', 'print the template as JSON')
    .action((name: string, o: Options & { file: string; replace?: boolean }) => create(name, o));
  templates
    .command('ls')
    .description('list templates: kind and parameters')
    .option('--tenant <tenant>', 'only this tenant (default: every tenant the token may see)')
    .addOption(serverOption())
    .addOption(tokenOption())
    .option('--json', 'print a JSON array')
    .action((o: Options) => ls(o));
  templates
    .command('get')
    .description('a template: its parameters and its text')
    .argument('<name>')
    .option('--tenant <tenant>', "the template's tenant (default: the token's only tenant)")
    .addOption(serverOption())
    .addOption(tokenOption())
    .option('--json', 'print the template as JSON')
    .action((name: string, o: Options) => get(name, o));
  templates
    .command('rm')
    .description('delete a template (jobs it made stay; a schedule using it fails its ticks until it is back)')
    .argument('<name>')
    .option('--tenant <tenant>', "the template's tenant (default: the token's only tenant)")
    .addOption(serverOption())
    .addOption(tokenOption())
    .option('--json', 'print the deleted template as JSON')
    .action((name: string, o: Options) => rm(name, o));
}

async function create(name: string, o: Options & { file: string; replace?: boolean }): Promise<void> {
  let text: string;
  try {
    text = readFileSync(o.file, 'utf8');
  } catch (err) {
    throw new UsageError(`-f ${o.file}: ${(err as Error).message}`, { cause: err });
  }
  const res = await withConnection(o, (conn) =>
    unary(conn, 'TemplateService.CreateTemplate', conn.templates.createTemplate.bind(conn.templates), {
      name,
      tenant: o.tenant ?? '',
      text,
      replace: o.replace ?? false,
    }),
  );
  const t = res.template;
  if (!t) throw new Error('TemplateService.CreateTemplate returned no template');
  if (o.json) return printJson(Template.toJSON(t));
  process.stdout.write(`template ${t.tenant}/${t.name} stored (${t.kind}, parameters: ${paramList(t) || 'none'})\n`);
}

const paramList = (t: Template): string =>
  t.params.map((p) => (p.required ? `${p.name} (required)` : `${p.name}=${p.defaultValue}`)).join(', ');

async function ls(o: Options): Promise<void> {
  const res = await withConnection(o, (conn) =>
    unary(conn, 'TemplateService.ListTemplates', conn.templates.listTemplates.bind(conn.templates), { tenant: o.tenant ?? '' }),
  );
  if (o.json) return printJson(res.templates.map((t) => Template.toJSON(t)));
  const rows = res.templates.map((t) => [t.tenant, t.name, t.kind, paramList(t) || '-', t.updatedAt ?? '']);
  process.stdout.write(`${table(['TENANT', 'NAME', 'KIND', 'PARAMETERS', 'UPDATED'], rows)}\n`);
}

async function get(name: string, o: Options): Promise<void> {
  const res = await withConnection(o, (conn) =>
    unary(conn, 'TemplateService.GetTemplate', conn.templates.getTemplate.bind(conn.templates), { name, tenant: o.tenant ?? '' }),
  );
  const t = res.template;
  if (!t) throw new Error('TemplateService.GetTemplate returned no template');
  if (o.json) return printJson(Template.toJSON(t));
  const params = t.params.map((p) => [p.name, p.required ? '(required)' : p.defaultValue, p.description]);
  const head = keyValues([
    ['name', t.name],
    ['tenant', t.tenant],
    ['kind', t.kind],
    ['created', `${t.createdAt} by ${t.createdBy}`],
    ['updated', t.updatedAt],
  ]);
  const paramBlock = params.length ? `parameters:\n${indent(table(['NAME', 'DEFAULT', 'DESCRIPTION'], params))}` : 'parameters: none';
  process.stdout.write(`${head}\n${paramBlock}\ntext:\n${indent(t.text.trimEnd())}\n`);
}

async function rm(name: string, o: Options): Promise<void> {
  const res = await withConnection(o, (conn) =>
    unary(conn, 'TemplateService.DeleteTemplate', conn.templates.deleteTemplate.bind(conn.templates), { name, tenant: o.tenant ?? '' }),
  );
  if (o.json) return printJson(res.template ? Template.toJSON(res.template) : {});
  process.stdout.write(`template ${name} deleted\n`);
}
