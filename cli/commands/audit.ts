/** `runmesh audit ls`: the audit log, oldest first (admin and operator). */
import type { Command } from 'commander';
import { AuditEntry } from '../../proto/gen/runmesh/v1/audit.js';
import { unary, withConnection } from '../client.js';
import { durationMs, whole } from '../flags.js';
import { printJson, table } from '../format.js';
import { serverOption, tokenOption, type Target } from '../options.js';

interface LsOptions extends Target {
  since?: number;
  actor?: string;
  limit: number;
  json?: boolean;
}

export function registerAudit(program: Command): void {
  const audit = program.command('audit').description('read the audit log (admin, operator)');
  audit
    .command('ls')
    .description('list audit entries, oldest first: mutating calls and failed authentications')
    .option('--since <duration>', 'only entries this recent (1h, 7d)', durationMs)
    .option('--actor <id>', "only this actor's entries (a token id, an agent name, or anonymous)")
    .option('--limit <n>', 'at most this many', whole('--limit'), 100)
    .addOption(serverOption())
    .addOption(tokenOption())
    .option('--json', 'print a JSON array')
    .action((options: LsOptions) => ls(options));
}

async function ls(o: LsOptions): Promise<void> {
  const since = o.since === undefined ? '' : new Date(Date.now() - o.since).toISOString();
  const entries: AuditEntry[] = [];
  await withConnection(o, async (conn) => {
    let pageToken = '';
    // Pages of at most 1000 (the server's limit) until --limit entries or the end.
    do {
      const res = await unary(conn, 'AuditService.ListAudit', conn.audit.listAudit.bind(conn.audit), {
        since,
        actor: o.actor ?? '',
        limit: Math.min(1000, o.limit - entries.length),
        pageToken,
      });
      entries.push(...res.entries);
      pageToken = res.nextPageToken;
    } while (pageToken && entries.length < o.limit);
  });
  if (o.json) return printJson(entries.map((e) => AuditEntry.toJSON(e)));
  const rows = entries.map((e) => [e.time, e.actor, e.method, e.target || '-', e.address, e.result]);
  process.stdout.write(`${table(['TIME', 'ACTOR', 'METHOD', 'TARGET', 'FROM', 'RESULT'], rows)}\n`);
}
