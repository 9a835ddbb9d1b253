/**
 * Which token the CLI sends, and the per-user config file it may come from.
 * In order: `--token`, `RUNMESH_TOKEN`, then the current context of the config
 * file (`RUNMESH_CONFIG`, else `$XDG_CONFIG_HOME/runmesh/config.json`, else
 * `~/.config/runmesh/config.json`) when that context is for the server being
 * called: a token is never sent to a server it was not given for.
 *
 * The file, like a kubeconfig: `{ "current": "dev", "contexts": { "dev": {
 * "server": "127.0.0.1:7433", "tokenFile": "/abs/.runmesh/admin.token" } } }`.
 * `runmesh dev` writes its own context there, so the CLI works with no flags.
 * A context for a `tcps://` server may name the CA file to verify it with
 * (`"ca"`); `RUNMESH_TLS_CA` overrides it.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseAddress } from '../transport/address.js';
import { UsageError } from './errors.js';

export interface Context {
  server: string;
  /** The token itself, or (better) a file holding it. */
  token?: string;
  tokenFile?: string;
  /** For a `tcps://` server: the CA file (PEM) to verify it against, e.g. a `--tls-auto` server's `<data-dir>/tls/ca.pem`. */
  ca?: string;
}

interface ConfigFile {
  current?: string;
  contexts?: Record<string, Context>;
}

export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.RUNMESH_CONFIG) return env.RUNMESH_CONFIG;
  const base = env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'runmesh', 'config.json');
}

function readConfig(path: string): ConfigFile {
  if (!existsSync(path)) return {};
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as ConfigFile;
  } catch (err) {
    throw new UsageError(`${path}: not a runmesh config file (${(err as Error).message})`);
  }
}

/** The token to send to `server`: the one given (flag or env), else the current context's when it is for `server`. */
export function tokenFor(server: string, given: string | undefined): string | undefined {
  if (given) return given.trim();
  const path = configPath();
  const config = readConfig(path);
  const context = config.current ? config.contexts?.[config.current] : undefined;
  if (!context || !sameServer(context.server, server)) return undefined;
  if (context.token) return context.token.trim();
  if (!context.tokenFile) return undefined;
  try {
    return readFileSync(context.tokenFile, 'utf8').trim();
  } catch (err) {
    throw new UsageError(`context ${config.current} in ${path}: cannot read its token file (${(err as Error).message})`);
  }
}

/** The CA file to verify `server` against: `RUNMESH_TLS_CA`, else the current context's when it is for `server`. */
export function caFor(server: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.RUNMESH_TLS_CA) return env.RUNMESH_TLS_CA;
  const config = readConfig(configPath(env));
  const context = config.current ? config.contexts?.[config.current] : undefined;
  return context && sameServer(context.server, server) ? context.ca : undefined;
}

/** Two spellings of one address (`127.0.0.1:7433`, `tcp://127.0.0.1:7433`) name the same server; text that is no address only matches itself. */
export function sameServer(a: string, b: string): boolean {
  if (a === b) return true;
  const left = canonical(a);
  return left !== undefined && left === canonical(b);
}

function canonical(address: string): string | undefined {
  try {
    return parseAddress(address).address;
  } catch {
    return undefined;
  }
}

/** Writes (or replaces) context `name` and makes it current; the file is private to the user (mode 0600). */
export function saveContext(name: string, context: Context, path = configPath()): void {
  const config = readConfig(path);
  const next: ConfigFile = { ...config, current: name, contexts: { ...config.contexts, [name]: context } };
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(next, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, path);
}
