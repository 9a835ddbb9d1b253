/**
 * `runmesh secrets set | ls | rm | rotate-key`: a tenant's secrets. A value is
 * read from stdin or --from-file, never from the command line (where `ps` and
 * shell history would show it), and nothing prints one back.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { DeleteSecretResponse, RotateSecretsKeyResponse, SecretInfo, SetSecretResponse } from '../../proto/gen/runmesh/v1/secret.js';
import { unary, withConnection } from '../client.js';
import { UsageError } from '../errors.js';
import { printJson, table } from '../format.js';
import { serverOption, tokenOption, type Target } from '../options.js';

interface SetOptions extends Target {
  tenant?: string;
  fromFile?: string;
  json?: boolean;
}

export function registerSecrets(program: Command): void {
  const secrets = program.command('secrets').description("manage a tenant's secrets (values go in, never come out)");
  secrets
    .command('set')
    .description('create or replace a secret; the value is read from stdin (one trailing newline dropped) or --from-file (as it is)')
    .argument('<name>', 'letters, digits and _, not starting with a digit')
    .option('--tenant <tenant>', "the secret's tenant (default: the token's only tenant)")
    .option('--from-file <file>', 'read the value from this file, byte for byte')
    .addOption(serverOption())
    .addOption(tokenOption())
    .option('--json', 'print {"info","created"} as JSON')
    .action((name: string, o: SetOptions) => set(name, o));
  secrets
    .command('ls')
    .description('list secrets: names, tenants, key ids, never values')
    .option('--tenant <tenant>', 'only this tenant (default: every tenant the token may see)')
    .addOption(serverOption())
    .addOption(tokenOption())
    .option('--json', 'print a JSON array')
    .action((o: Target & { tenant?: string; json?: boolean }) => ls(o));
  secrets
    .command('rm')
    .description('delete a secret (jobs that reference it and have not started fail as not runnable)')
    .argument('<name>')
    .option('--tenant <tenant>', "the secret's tenant (default: the token's only tenant)")
    .addOption(serverOption())
    .addOption(tokenOption())
    .option('--json', 'print {"deleted"} as JSON')
    .action((name: string, o: Target & { tenant?: string; json?: boolean }) => rm(name, o));
  secrets
    .command('rotate-key')
    .description(
      "re-encrypt every secret under the server's current key (admin). First restart every peer with the new key as " +
        '--secrets-key-file and the old one as --secrets-previous-key-file; once this succeeds, the old key can go',
    )
    .addOption(serverOption())
    .addOption(tokenOption())
    .option('--json', 'print {"keyId","reencrypted","total","hooksResealed","hooksTotal"} as JSON')
    .action((o: Target & { json?: boolean }) => rotate(o));
}

async function set(name: string, o: SetOptions): Promise<void> {
  const value = o.fromFile !== undefined ? await fromFile(o.fromFile) : await fromStdin();
  const res = await withConnection(o, (conn) =>
    unary(conn, 'SecretService.SetSecret', conn.secrets.setSecret.bind(conn.secrets), { name, tenant: o.tenant ?? '', value }),
  );
  if (o.json) return printJson(SetSecretResponse.toJSON(res));
  process.stdout.write(`secret ${res.info?.tenant}/${res.info?.name} ${res.created ? 'created' : 'replaced'}\n`);
}

async function fromFile(path: string): Promise<string> {
  try {
    return text(await readFile(path), `--from-file ${path}`);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`--from-file: ${(err as Error).message}`, { cause: err });
  }
}

async function fromStdin(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write('reading the value from stdin (end it with Ctrl-D)\n');
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const value = text(Buffer.concat(chunks), 'stdin');
  // `echo $TOKEN |` and a typed line end with a newline that is not part of the value.
  return value.endsWith('\n') ? value.slice(0, value.endsWith('\r\n') ? -2 : -1) : value;
}

function text(bytes: Buffer, from: string): string {
  const value = bytes.toString('utf8');
  if (!Buffer.from(value, 'utf8').equals(bytes))
    throw new UsageError(`${from}: the value is not UTF-8 text (base64 a binary value, and decode it in the job)`);
  if (value === '') throw new UsageError(`${from}: the value is empty`);
  return value;
}

async function ls(o: Target & { tenant?: string; json?: boolean }): Promise<void> {
  const res = await withConnection(o, (conn) =>
    unary(conn, 'SecretService.ListSecrets', conn.secrets.listSecrets.bind(conn.secrets), { tenant: o.tenant ?? '' }),
  );
  if (o.json) return printJson(res.secrets.map((s) => SecretInfo.toJSON(s)));
  const rows = res.secrets.map((s) => [s.tenant, s.name, s.keyId, s.updatedAt, s.updatedBy]);
  process.stdout.write(`${table(['TENANT', 'NAME', 'KEY', 'UPDATED', 'BY'], rows)}\n`);
}

async function rm(name: string, o: Target & { tenant?: string; json?: boolean }): Promise<void> {
  const res = await withConnection(o, (conn) =>
    unary(conn, 'SecretService.DeleteSecret', conn.secrets.deleteSecret.bind(conn.secrets), { name, tenant: o.tenant ?? '' }),
  );
  if (o.json) return printJson(DeleteSecretResponse.toJSON(res));
  process.stdout.write(res.deleted ? `secret ${name} deleted\n` : `no secret ${name}\n`);
}

async function rotate(o: Target & { json?: boolean }): Promise<void> {
  const res = await withConnection(o, (conn) =>
    unary(conn, 'SecretService.RotateSecretsKey', conn.secrets.rotateSecretsKey.bind(conn.secrets), {}),
  );
  if (o.json) return printJson(RotateSecretsKeyResponse.toJSON(res));
  process.stdout.write(
    `${res.reencrypted} of ${res.total} secrets re-encrypted, ${res.hooksResealed} of ${res.hooksTotal} webhook secrets; ` +
      `every secret is under key ${res.keyId}\n`,
  );
}
