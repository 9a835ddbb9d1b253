/**
 * A quick end-to-end connectivity check: a throwaway channel must reach READY
 * (HTTP/2 settings received from the server, through any tunnel) before the
 * deadline. A connect that fails outright fails the probe at once instead of
 * waiting for the deadline, so fallback moves on quickly.
 */
import * as grpc from '@grpc/grpc-js';
import { TransportError } from './errors.js';

export interface Dialable {
  target: string;
  credentials: grpc.ChannelCredentials;
  channelOptions: grpc.ChannelOptions;
}

export async function probe(dialable: Dialable, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted();
  // A local subchannel pool, so the check opens a fresh connection rather than trusting a pooled one.
  const channel = new grpc.Channel(dialable.target, dialable.credentials, {
    ...dialable.channelOptions,
    'grpc.use_local_subchannel_pool': 1,
  });
  try {
    await waitReady(channel, timeoutMs, signal);
  } finally {
    channel.close();
  }
}

function waitReady(channel: grpc.Channel, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    let settled = false;
    const onAbort = (): void => finish(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
    function finish(err?: Error): void {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      if (err === undefined) resolve();
      else reject(err);
    }
    function check(state: grpc.connectivityState): void {
      if (state === grpc.connectivityState.READY) return finish();
      if (state === grpc.connectivityState.TRANSIENT_FAILURE) return finish(new TransportError('connection failed'));
      if (state === grpc.connectivityState.SHUTDOWN) return finish(new TransportError('channel shut down'));
      channel.watchConnectivityState(state, deadline, (err) => {
        if (err !== undefined) finish(new TransportError(`not ready within ${timeoutMs} ms`));
        else check(channel.getConnectivityState(false));
      });
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    check(channel.getConnectivityState(true));
  });
}
