/**
 * `runmesh hooks create | ls | rm | deliveries`: webhooks (README "Webhooks").
 * An inbound hook (`--template`) is `POST /hooks/NAME` on the server's HTTP
 * port; an outbound one (`--url`) is sent the events it names.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { Hook, HookDelivery } from '../../proto/gen/runmesh/v1/hook.js';
import { unary, withConnection } from '../client.js';
import { UsageError } from '../errors.js';
import { printJson, table } from '../format.js';
import { serverOption, tokenOption, type Target } from '../options.js';

type Options = Target & { tenant?: string; json?: boolean };
type CreateOptions = Options & { template?: string; paramMap?: string; url?: string; events?: string; secretFile?: string };

export function registerHooks(program: Command): void {
  const hooks = program
    .command('hooks')
    .description('webhooks: inbound ones submit a template, outbound ones are sent job and agent events');
  hooks
    .command('create')
    .description(
      'store a hook: --template (inbound, POST /hooks/NAME) or --url (outbound); without --secret-file a secret is made and printed once',
    )
    .argument('<name>', "letters, digits, '.', '_' and '-', at most 63 (unique across tenants)")
    .option('--template <template>', 'inbound: the template it submits')
    .option('--param-map <map>', 'inbound: PARAM=PATH,... taking each parameter from the JSON payload (sha=$.after,branch=$.ref)')
    .option('--url <url>', 'outbound: http(s) URL the events are POSTed to')
    .option('--events <events>', 'outbound: job.finished,job.failed,agent.lost', 'job.finished,job.failed')
    .option('--secret-file <file>', 'the HMAC secret (16 to 512 bytes; a trailing newline is dropped)')
    .option('--tenant <tenant>', "the hook's tenant (default: the token's only tenant)")
    .addOption(serverOption())
    .addOption(tokenOption())
    .option('--json', 'print the hook (and a generated secret) as JSON')
    .action((name: string, o: CreateOptions) => create(name, o));
  hooks
    .command('ls')
    .description('list hooks (never their secrets)')
    .option('--tenant <tenant>', 'only this tenant (default: every tenant the token may see)')
    .addOption(serverOption())
    .addOption(tokenOption())
    .option('--json', 'print a JSON array')
    .action((o: Options) => ls(o));
  hooks
    .command('rm')
    .description('delete a hook, its replay memory and its delivery history')
    .argument('<name>')
    .option('--tenant <tenant>', "the hook's tenant (default: the token's only tenant)")
    .addOption(serverOption())
    .addOption(tokenOption())
    .option('--json', 'print the deleted hook as JSON')
    .action((name: string, o: Options) => rm(name, o));
  hooks
    .command('deliveries')
    .description("an outbound hook's last deliveries, newest first: event, status, attempts")
    .argument('<name>')
    .option('--tenant <tenant>', "the hook's tenant (default: the token's only tenant)")
    .addOption(serverOption())
    .addOption(tokenOption())
    .option('--json', 'print a JSON array')
    .action((name: string, o: Options) => deliveries(name, o));
}

function paramMap(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (text ?? '').split(',').filter((p) => p.trim())) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new UsageError(`--param-map: "${part}" is not PARAM=PATH`);
    out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return out;
}

function readSecret(file: string | undefined): string {
  if (file === undefined) return '';
  try {
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new UsageError(`--secret-file ${file}: ${(err as Error).message}`, { cause: err });
  }
}

async function create(name: string, o: CreateOptions): Promise<void> {
  if (Boolean(o.template) === Boolean(o.url)) throw new UsageError('give --template (an inbound hook) or --url (an outbound one)');
  const req = {
    name,
    tenant: o.tenant ?? '',
    template: o.template ?? '',
    paramMap: paramMap(o.paramMap),
    url: o.url ?? '',
    events: o.url
      ? (o.events ?? '')
          .split(',')
          .map((e) => e.trim())
          .filter(Boolean)
      : [],
    secret: readSecret(o.secretFile),
  };
  const res = await withConnection(o, (conn) => unary(conn, 'HookService.CreateHook', conn.hooks.createHook.bind(conn.hooks), req));
  const h = res.hook;
  if (!h) throw new Error('HookService.CreateHook returned no hook');
  if (o.json) return printJson({ hook: Hook.toJSON(h), ...(res.generatedSecret ? { secret: res.generatedSecret } : {}) });
  const what = h.template ? `inbound: POST /hooks/${h.name} submits template ${h.template}` : `outbound: ${h.events.join(',')} to ${h.url}`;
  process.stdout.write(`hook ${h.tenant}/${h.name} stored (${what})\n`);
  if (res.generatedSecret) process.stdout.write(`secret (shown once, keep it): ${res.generatedSecret}\n`);
}

async function ls(o: Options): Promise<void> {
  const res = await withConnection(o, (conn) =>
    unary(conn, 'HookService.ListHooks', conn.hooks.listHooks.bind(conn.hooks), { tenant: o.tenant ?? '' }),
  );
  if (o.json) return printJson(res.hooks.map((h) => Hook.toJSON(h)));
  const rows = res.hooks.map((h) => [
    h.tenant,
    h.name,
    h.template ? 'in' : 'out',
    h.template
      ? `${h.template} ${Object.entries(h.paramMap)
          .map(([k, v]) => `${k}=${v}`)
          .join(',')}`.trim()
      : `${h.url} ${h.events.join(',')}`,
    h.createdAt ?? '',
  ]);
  process.stdout.write(`${table(['TENANT', 'NAME', 'DIR', 'TARGET', 'CREATED'], rows)}\n`);
}

async function rm(name: string, o: Options): Promise<void> {
  const res = await withConnection(o, (conn) =>
    unary(conn, 'HookService.DeleteHook', conn.hooks.deleteHook.bind(conn.hooks), { name, tenant: o.tenant ?? '' }),
  );
  if (o.json) return printJson(res.hook ? Hook.toJSON(res.hook) : {});
  process.stdout.write(`hook ${name} deleted\n`);
}

async function deliveries(name: string, o: Options): Promise<void> {
  const res = await withConnection(o, (conn) =>
    unary(conn, 'HookService.ListDeliveries', conn.hooks.listDeliveries.bind(conn.hooks), { name, tenant: o.tenant ?? '' }),
  );
  if (o.json) return printJson(res.deliveries.map((d) => HookDelivery.toJSON(d)));
  const state = (d: HookDelivery): string => (d.delivered ? 'delivered' : d.pending ? 'retrying' : 'failed');
  const rows = res.deliveries.map((d) => [
    d.event,
    d.subject,
    state(d),
    String(d.statusCode || '-'),
    String(d.attempts),
    d.updatedAt ?? '',
    d.error,
  ]);
  process.stdout.write(`${table(['EVENT', 'SUBJECT', 'STATE', 'STATUS', 'ATTEMPTS', 'UPDATED', 'ERROR'], rows)}\n`);
}
