/**
 * HTTP proxy settings from the environment, read the way curl reads them:
 * lowercase first, then uppercase; NO_PROXY is a comma- or space-separated
 * list of hosts, domain suffixes (".corp" or "corp"), "host:port", or "*".
 *
 * ws/wss: we dial the WebSocket ourselves, so we pick the proxy here
 * (wss: HTTPS_PROXY then HTTP_PROXY; ws: HTTP_PROXY) and tunnel with CONNECT.
 * tcp/tcps: grpc-js proxies on its own, but reads only the lowercase
 * grpc_proxy/https_proxy/http_proxy and no_grpc_proxy/no_proxy; so that an
 * uppercase NO_PROXY means the same thing on every transport, we turn a
 * NO_PROXY match into `grpc.enable_http_proxy: 0` for that channel.
 */
import type { ChannelOptions } from '@grpc/grpc-js';
import type { Target } from './address.js';

export type Env = Readonly<Record<string, string | undefined>>;

function read(env: Env, name: string): string | undefined {
  const value = env[name.toLowerCase()] ?? env[name.toUpperCase()];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

/** True when NO_PROXY (or no_grpc_proxy / no_proxy) says to reach `host:port` directly. */
export function bypassesProxy(host: string, port: number, env: Env): boolean {
  const list = read(env, 'no_grpc_proxy') ?? read(env, 'no_proxy');
  if (list === undefined) return false;
  const name = host.toLowerCase();
  return list
    .split(/[\s,]+/)
    .filter((entry) => entry !== '')
    .some((entry) => matchesEntry(entry.toLowerCase(), name, port));
}

function matchesEntry(entry: string, host: string, port: number): boolean {
  if (entry === '*') return true;
  const { pattern, entryPort } = splitEntry(entry);
  if (entryPort !== undefined && entryPort !== port) return false;
  const suffix = pattern.replace(/^\*?\./, '');
  return host === suffix || host.endsWith(`.${suffix}`);
}

function splitEntry(entry: string): { pattern: string; entryPort?: number } {
  const bracketed = /^\[(.+)\](?::(\d+))?$/.exec(entry);
  if (bracketed !== null) return withPort(bracketed[1] ?? '', bracketed[2]);
  if (entry.split(':').length > 2) return { pattern: entry }; // a bare IPv6 literal
  const hostPort = /^(.+):(\d+)$/.exec(entry);
  return hostPort === null ? { pattern: entry } : withPort(hostPort[1] ?? '', hostPort[2]);
}

function withPort(pattern: string, port: string | undefined): { pattern: string; entryPort?: number } {
  return port === undefined ? { pattern } : { pattern, entryPort: Number(port) };
}

/** The proxy URL to use for a WebSocket target, or undefined to connect directly. */
export function webSocketProxy(target: Target, env: Env): string | undefined {
  if (target.scheme !== 'ws' && target.scheme !== 'wss') return undefined;
  if (bypassesProxy(target.host, target.port, env)) return undefined;
  return target.scheme === 'wss' ? (read(env, 'https_proxy') ?? read(env, 'http_proxy')) : read(env, 'http_proxy');
}

/** Channel options that make grpc-js honour an uppercase NO_PROXY for a tcp target. */
export function grpcProxyOptions(target: Target, env: Env): ChannelOptions {
  return bypassesProxy(target.host, target.port, env) ? { 'grpc.enable_http_proxy': 0 } : {};
}
