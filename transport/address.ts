/**
 * Transport addresses: the one place that turns operator text into a Target.
 *
 *   tcp://host:port   host:port   plaintext HTTP/2 over TCP
 *   tcps://host:port              HTTP/2 over TLS (optionally mTLS)
 *   unix:///abs/path              same host; plaintext, guarded by file permissions
 *   ws://host:port/path           HTTP/2 bytes inside WebSocket frames (path defaults to /agent)
 *   wss://host:port/path          the same over TLS
 *
 * quic:// is reserved: it is recognised so the operator gets a clear answer,
 * and becomes a Scheme once Node ships QUIC in a stable release.
 */
import { InvalidAddressError } from './errors.js';

/** Schemes this runtime can dial or bind. `quic` joins the union when Node ships it. */
export type Scheme = 'tcp' | 'tcps' | 'unix' | 'ws' | 'wss';

/** Schemes we know of but cannot serve here, with the reason given to the operator. */
const RESERVED_SCHEMES: Readonly<Record<string, string>> = {
  quic: 'quic: not supported by this Node runtime (use tcps:// or wss://)',
};

/** The WebSocket tunnel path the control plane serves when a ws/wss address names none. */
export const DEFAULT_TUNNEL_PATH = '/agent';

/**
 * The control plane's default gRPC address: where it listens, and where the
 * CLI and agents look for it, unless told otherwise.
 */
export const DEFAULT_SERVER = '127.0.0.1:7433';

export interface Target {
  /** Canonical text, e.g. "tcp://127.0.0.1:7000", "unix:///run/rm.sock", "wss://cp:443/agent". */
  address: string;
  scheme: Scheme;
  /** True for tcps and wss: the bytes are TLS on the wire. */
  encrypted: boolean;
  /** tcp/tcps/ws/wss: host name or IP, IPv6 without brackets; "" for unix. */
  host: string;
  /** tcp/tcps/ws/wss: port (0 only makes sense for binding); 0 for unix. */
  port: number;
  /** unix: the socket path; ws/wss: URL path and query; "" for tcp/tcps. */
  path: string;
}

const SCHEME_PREFIX = /^([a-z][a-z0-9+.-]*):/i;

/** Parses an address; throws InvalidAddressError (a TransportError) naming the text on garbage. */
export function parseAddress(text: string): Target {
  const trimmed = text.trim();
  if (trimmed === '') throw new InvalidAddressError(text, 'empty address');
  const match = SCHEME_PREFIX.exec(trimmed);
  const scheme = match?.[1]?.toLowerCase();
  // "localhost:7000" also matches the scheme pattern; a bare host:port has digits after the colon.
  if (scheme === undefined || /^[^/:]+:\d+$/.test(trimmed) || trimmed.startsWith('[')) {
    return tcpTarget(text, 'tcp', trimmed);
  }
  const rest = trimmed.slice(scheme.length + 1);
  const reserved = RESERVED_SCHEMES[scheme];
  if (reserved !== undefined) throw new InvalidAddressError(text, reserved);
  switch (scheme) {
    case 'tcp':
    case 'tcps':
      return tcpTarget(text, scheme, stripSlashes(text, rest));
    case 'unix':
      return unixTarget(text, rest);
    case 'ws':
    case 'wss':
      return webSocketTarget(text, scheme, trimmed);
    default:
      throw new InvalidAddressError(text, `unknown scheme "${scheme}" (expected tcp, tcps, unix, ws or wss)`);
  }
}

/** "host:port" as gRPC and URLs want it: IPv6 literals in brackets. */
export function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function stripSlashes(text: string, rest: string): string {
  if (!rest.startsWith('//')) throw new InvalidAddressError(text, 'expected "//" after the scheme');
  return rest.slice(2);
}

function tcpTarget(text: string, scheme: 'tcp' | 'tcps', hostPort: string): Target {
  const { host, port } = splitHostPort(text, hostPort);
  return { address: `${scheme}://${joinHostPort(host, port)}`, scheme, encrypted: scheme === 'tcps', host, port, path: '' };
}

/**
 * host:port or [v6]:port for a plain TCP listener (the HTTP one), port 0 to
 * 65535; ":7434" leaves the host empty, for the listener's default.
 */
export function parseHostPort(text: string): { host: string; port: number } {
  const trimmed = text.trim();
  return trimmed.startsWith(':') ? { host: '', port: checkPort(text, trimmed.slice(1)) } : splitHostPort(text, trimmed);
}

function checkPort(text: string, digits: string): number {
  const port = /^\d+$/.test(digits) ? Number(digits) : Number.NaN;
  if (!Number.isInteger(port) || port > 65535) throw new InvalidAddressError(text, `port out of range: ${digits}`);
  return port;
}

function splitHostPort(text: string, hostPort: string): { host: string; port: number } {
  const match = /^\[([0-9a-fA-F:.%\w]+)\]:(\d+)$/.exec(hostPort) ?? /^([^:/\s[\]@?#]+):(\d+)$/.exec(hostPort);
  if (match === null) throw new InvalidAddressError(text, 'expected host:port');
  return { host: match[1] ?? '', port: checkPort(text, match[2] ?? '') };
}

function unixTarget(text: string, rest: string): Target {
  // unix:///abs/path (URL form) and unix:/abs/path (gRPC's short form) both name an absolute path.
  const path = rest.startsWith('//') ? rest.slice(2) : rest;
  if (!path.startsWith('/') || path.length < 2) {
    throw new InvalidAddressError(text, 'unix addresses need an absolute path, e.g. unix:///run/runmesh.sock');
  }
  return { address: `unix://${path}`, scheme: 'unix', encrypted: false, host: '', port: 0, path };
}

function webSocketTarget(text: string, scheme: 'ws' | 'wss', trimmed: string): Target {
  let url: URL;
  try {
    url = new URL(trimmed);
  } catch {
    throw new InvalidAddressError(text, 'not a valid URL');
  }
  if (url.hostname === '') throw new InvalidAddressError(text, 'missing host');
  if (url.username !== '' || url.password !== '') throw new InvalidAddressError(text, 'credentials in the URL are not allowed');
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = url.port === '' ? (scheme === 'wss' ? 443 : 80) : Number(url.port);
  const pathname = url.pathname === '/' || url.pathname === '' ? DEFAULT_TUNNEL_PATH : url.pathname;
  const path = pathname + url.search;
  const address = `${scheme}://${joinHostPort(host, port)}${path}`;
  return { address, scheme, encrypted: scheme === 'wss', host, port, path };
}
