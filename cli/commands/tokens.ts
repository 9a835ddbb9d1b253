/** `runmesh tokens create | ls | revoke`: API tokens and join tokens (role agent), admin only. */
import type { Command } from 'commander';
import { formatJoinString } from '../../agent/join-string.js';
import { TokenInfo } from '../../proto/gen/runmesh/v1/token.js';
import { unary, withConnection } from '../client.js';
import { collectList, durationMs, parseLabels } from '../flags.js';
import { UsageError } from '../errors.js';
import { printJson, table } from '../format.js';
import { collect, parseWhole, serverOption, tokenOption, type Target } from '../options.js';

interface CreateOptions extends Target {
  role: string;
  tenant: string[];
  name?: string;
  ttl?: number;
  uses?: number;
  labels: string[];
  json?: boolean;
}

const MAX_USES = 1000;

export function registerTokens(program: Command): void {
  const tokens = program.command('tokens').description('create, list and revoke API tokens (admin)');
  tokens
    .command('create')
    .description('create a token; it is printed once and cannot be shown again')
    .requiredOption('--role <role>', 'admin, operator, submitter, viewer or agent')
    .option('--tenant <tenant>', 'a tenant it may act in (repeatable; none for admin)', collect, [])
    .option('--name <name>', 'a label for people ("ci-bot")')
    .option('--ttl <duration>', 'expires after this long (default: never; 30m for role agent)', durationMs)
    .option('--uses <n>', `role agent: how many agents it may enrol, 1-${MAX_USES} (default 1)`, (t) =>
      parseWhole('--uses', t, 1, MAX_USES),
    )
    .option('--labels <k=v,...>', 'role agent: labels every agent it enrols is given (repeatable)', collectList, [])
    .addOption(serverOption())
    .addOption(tokenOption())
    .option('--json', 'print the token and its record as JSON')
    .action((options: CreateOptions) => create(options));
  tokens
    .command('ls')
    .description('list tokens (never their secrets)')
    .addOption(serverOption())
    .addOption(tokenOption())
    .option('--json', 'print a JSON array')
    .action((options: Target & { json?: boolean }) => ls(options));
  tokens
    .command('revoke')
    .description('stop a token working, on every peer within a second')
    .argument('<id>', 'the token id (tokens ls)')
    .addOption(serverOption())
    .addOption(tokenOption())
    .option('--json', 'print {"id","revoked"} as JSON')
    .action((id: string, options: Target & { json?: boolean }) => revoke(id, options));
}

async function create(o: CreateOptions): Promise<void> {
  if (o.role === 'agent' && o.ttl === 0)
    throw new UsageError("--ttl: a join token (role agent) must expire; for one that never does, use the server's --join-token");
  const res = await withConnection(o, (conn) =>
    unary(conn, 'TokenService.CreateToken', conn.tokens.createToken.bind(conn.tokens), {
      name: o.name ?? '',
      role: o.role,
      tenants: o.tenant,
      ttlSeconds: Math.ceil((o.ttl ?? 0) / 1000),
      join: o.uses !== undefined || o.labels.length > 0 ? { uses: o.uses ?? 0, labels: parseLabels(o.labels) } : undefined,
    }),
  );
  // Under --tls-auto a join token is printed as a join string, with the CA's fingerprint for the agent to pin.
  const printed = formatJoinString(res.token, res.caFingerprint);
  if (o.json)
    return printJson({
      token: res.token,
      caFingerprint: res.caFingerprint,
      joinString: printed,
      info: res.info && TokenInfo.toJSON(res.info),
    });
  process.stdout.write(`${printed}\n`);
  process.stderr.write(`token ${res.info?.id} (${res.info?.role}): shown once, keep it somewhere safe\n`);
  if (res.caFingerprint)
    process.stderr.write(
      `join string: the token, then @ and the cluster CA's fingerprint, which the agent pins on first contact:\n` +
        `  runmesh agent --server tcps://<server>:<port> --join-token <the line above>\n` +
        `(an agent without pinning takes the part before @ as --join-token, with --tls-ca <the CA file>)\n`,
    );
}

async function ls(o: Target & { json?: boolean }): Promise<void> {
  const res = await withConnection(o, (conn) => unary(conn, 'TokenService.ListTokens', conn.tokens.listTokens.bind(conn.tokens), {}));
  if (o.json) return printJson(res.tokens.map((t) => TokenInfo.toJSON(t)));
  const rows = res.tokens.map((t) => [
    t.id,
    t.name,
    t.role,
    t.tenants.join(',') || (t.role === 'admin' ? '*' : '-'),
    t.expiresAt || 'never',
    t.role === 'agent' ? String(t.usesLeft) : '-',
    Object.entries(t.labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(',') || '-',
  ]);
  process.stdout.write(`${table(['ID', 'NAME', 'ROLE', 'TENANTS', 'EXPIRES', 'USES LEFT', 'LABELS'], rows)}\n`);
}

async function revoke(id: string, o: Target & { json?: boolean }): Promise<void> {
  const res = await withConnection(o, (conn) => unary(conn, 'TokenService.RevokeToken', conn.tokens.revokeToken.bind(conn.tokens), { id }));
  if (o.json) return printJson({ id, revoked: res.revoked });
  process.stdout.write(res.revoked ? `token ${id} revoked\n` : `no token ${id}\n`);
}
