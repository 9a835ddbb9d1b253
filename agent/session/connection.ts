/**
 * One connection to the control plane: Hello (with the attempts this agent
 * holds) → Welcome → messages until the stream ends. The caller (the agent)
 * owns what outlives a connection: the attempts and the reconnect loop.
 */
import { once } from 'node:events';
import type { Metadata } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  AgentServiceClient,
  type Assign,
  type ConnectRequest,
  type ConnectResponse,
  type Welcome,
} from '../../proto/gen/runmesh/v1/agent.js';
import { ACCEPTS_HEADER, PROTOCOL_VERSION } from '../../proto/protocol.js';
import { SESSION_KEEPALIVE_OPTIONS, type Dialer } from '../../transport/index.js';
import type { Link } from './link.js';
import { FastAgentServiceClient } from './wire.js';

/** What a connection asks of the agent. */
export interface ConnectionHost {
  hello(): ConnectRequest;
  onWelcome(w: Welcome, link: Link): void;
  onAssign(a: Assign, link: Link): void;
  onMessage(m: ConnectResponse, link: Link): void;
  heartbeat(): ConnectRequest;
}

/**
 * Runs one connection to its end. `onWelcomed` is called when it gets as far
 * as Welcome, so the caller knows it was good even if it then ends in an error.
 */
export async function runConnection(
  dialer: Dialer,
  host: ConnectionHost,
  log: Logger,
  stop: AbortSignal,
  onWelcomed: () => void,
): Promise<void> {
  // Fast pings: a silent peer is left in seconds, inside its lease (transport/keepalive.ts).
  const client = new FastAgentServiceClient(dialer.target, dialer.credentials, { ...dialer.channelOptions, ...SESSION_KEEPALIVE_OPTIONS });
  const call = client.connect();
  const ended = new AbortController();
  const onStop = (): void => void call.cancel();
  stop.addEventListener('abort', onStop, { once: true });
  const features = new Set<string>();
  // Response headers come before any message, so before the Welcome that starts the attempts' streams.
  call.on('metadata', (md: Metadata) => {
    for (const v of md.get(ACCEPTS_HEADER)) for (const f of String(v).split(',')) if (f.trim()) features.add(f.trim());
  });
  const link: Link = {
    features,
    signal: ended.signal,
    send: (m) => !ended.signal.aborted && call.write(m),
    drained: async () => {
      if (!ended.signal.aborted) await once(call, 'drain', { signal: ended.signal }).catch(() => undefined);
    },
    client: new AgentServiceClient(dialer.target, dialer.credentials, { channelOverride: client.getChannel() }),
  };
  let welcomed = false;
  let heartbeat: NodeJS.Timeout | undefined;
  try {
    call.write(host.hello());
    for await (const m of call as AsyncIterable<ConnectResponse>) {
      const msg = m.msg;
      if (msg?.$case === 'welcome') {
        welcomed = true;
        onWelcomed();
        heartbeat = setInterval(() => link.send(host.heartbeat()), Math.max(100, msg.value.heartbeatIntervalMs || 2000));
        host.onWelcome(msg.value, link);
      } else if (!welcomed) {
        log.warn({ got: msg?.$case }, 'message before Welcome, ignored');
      } else if (msg?.$case === 'assign') host.onAssign(msg.value, link);
      else host.onMessage(m, link);
    }
  } catch (err) {
    if (!stop.aborted) throw err;
  } finally {
    clearInterval(heartbeat);
    ended.abort();
    stop.removeEventListener('abort', onStop);
    call.cancel();
    client.close();
  }
}

export { PROTOCOL_VERSION };
