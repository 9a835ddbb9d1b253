/**
 * dial(): turn a Target into what grpc-js needs to build a client (target
 * string, credentials, channel options).
 *
 * tcp/tcps/unix map straight onto grpc-js targets. ws/wss run a private local
 * bridge (ws-bridge.ts) and hand grpc-js its Unix socket.
 *
 * Proxies: for ws/wss we honour HTTPS_PROXY / HTTP_PROXY / NO_PROXY (either
 * case) and tunnel through the proxy with CONNECT (https-proxy-agent). For
 * tcp/tcps grpc-js proxies by itself from the lowercase grpc_proxy,
 * https_proxy, http_proxy (and no_grpc_proxy, no_proxy); it ignores the
 * uppercase names, except that an uppercase NO_PROXY match is mapped to
 * `grpc.enable_http_proxy: 0` here so exclusions agree across transports.
 */
import * as grpc from '@grpc/grpc-js';
import { HttpsProxyAgent } from 'https-proxy-agent';
import type { Logger } from 'pino';
import { joinHostPort, type Target } from './address.js';
import { channelCredentials, loadClientTls, type ClientTlsFiles, type ClientTlsMaterial } from './credentials.js';
import { KEEPALIVE_CLIENT_OPTIONS } from './keepalive.js';
import { grpcProxyOptions, webSocketProxy, type Env } from './proxy.js';
import { startWebSocketBridge } from './ws-bridge.js';

/** What a gRPC client is built from: `new Client(d.target, d.credentials, d.channelOptions)`. */
export interface Dialer {
  /** grpc-js target string, e.g. "127.0.0.1:7000" or "unix:///tmp/runmesh-bridge-x/bridge.sock". */
  target: string;
  credentials: grpc.ChannelCredentials;
  /** Keepalive and proxy settings; merge your own on top. */
  channelOptions: grpc.ChannelOptions;
  /** Releases what dial() set up (the ws bridge). Close clients built on it first. Idempotent. */
  close(): Promise<void>;
}

export interface DialOptions {
  /** PEM file paths; used by tcps and wss only. */
  tls?: ClientTlsFiles;
  logger: Logger;
  signal?: AbortSignal;
  /** Where proxy settings are read from. Default process.env. */
  env?: Env;
}

export async function dial(target: Target, options: DialOptions): Promise<Dialer> {
  options.signal?.throwIfAborted();
  const tls = target.encrypted ? await loadClientTls(options.tls) : {};
  const env = options.env ?? process.env;
  switch (target.scheme) {
    case 'tcp':
    case 'tcps':
      return direct(joinHostPort(target.host, target.port), target.encrypted ? channelCredentials(tls) : undefined, {
        ...grpcProxyOptions(target, env),
      });
    case 'unix':
      return direct(target.address, undefined, {});
    case 'ws':
    case 'wss':
      return viaBridge(target, tls, env, options);
  }
}

function direct(target: string, credentials: grpc.ChannelCredentials | undefined, extra: grpc.ChannelOptions): Dialer {
  return {
    target,
    credentials: credentials ?? grpc.credentials.createInsecure(),
    channelOptions: { ...KEEPALIVE_CLIENT_OPTIONS, ...extra },
    close: () => Promise.resolve(),
  };
}

async function viaBridge(target: Target, tls: ClientTlsMaterial, env: Env, options: DialOptions): Promise<Dialer> {
  const proxy = webSocketProxy(target, env);
  const logger = options.logger.child({ component: 'transport.dial' });
  if (proxy !== undefined) logger.info({ address: target.address, proxy: redact(proxy) }, 'websocket via proxy');
  const bridge = await startWebSocketBridge({
    url: target.address,
    tls,
    agent: proxy === undefined ? undefined : new HttpsProxyAgent(proxy),
    logger,
  });
  if (options.signal?.aborted === true) {
    await bridge.close();
    options.signal.throwIfAborted();
  }
  return {
    target: `unix://${bridge.socketPath}`,
    credentials: grpc.credentials.createInsecure(),
    channelOptions: { ...KEEPALIVE_CLIENT_OPTIONS },
    close: () => bridge.close(),
  };
}

/** Proxy URLs may carry user:password; never log those. */
function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparseable proxy URL>';
  }
}
