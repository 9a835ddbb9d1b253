/**
 * A raw gRPC channel to etcd for the calls we encode ourselves (`etcd-wire`):
 * one grpc-js client per endpoint, the current one kept until it is
 * unreachable, then the next. A call refused because no connection could be
 * made is retried a few times with a short backoff (the request never left;
 * retry.ts's ETCD_RESEND), on the next endpoint, so an etcd restart costs a
 * pause, not an error; anything else is the caller's to decide. Over TLS
 * (etcd-tls.ts) when the store's address asks for it, with etcd's token
 * (etcd-auth.ts) when a user is given: a call refused for a stale token is
 * sent once more with a new one.
 */
import { Client, credentials, Metadata, type ChannelOptions } from '@grpc/grpc-js';
import { EtcdAuth, isStaleToken, tokenMetadata, type EtcdUser } from './etcd-auth.js';
import { tlsChannelOptions, tlsCredentials, type EtcdTls } from './etcd-tls.js';
import { decodeAuthenticateResponse, encodeAuthenticate } from './etcd-wire.js';
import { ETCD_RESEND, retryStore } from './retry.js';

/**
 * Reconnect to etcd quickly: grpc-js backs off 1 s, then ×1.6 up to 2 min by
 * default, so a sub-second etcd restart could cost a peer more than its lease
 * TTL (default 5 s, 2 s in tests) before a keepalive gets through again.
 * Shared with the etcd3 client, which carries the lease keepalives.
 */
export const ETCD_CHANNEL_OPTIONS: ChannelOptions = {
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 1000,
  // A range page or watch fragment of large values can pass grpc-js's 4 MB default.
  'grpc.max_receive_message_length': 64 * 1024 * 1024,
};

/** How to reach etcd: TLS when `tls` is set (the endpoints are then https://), a user when `user` is. */
export interface EtcdConnection {
  tls: EtcdTls | undefined;
  user: EtcdUser | undefined;
}

export class EtcdRpc {
  private readonly clients: Client[];
  private current = 0;
  /** etcd's token for both connections; undefined without a user. */
  readonly auth: EtcdAuth | undefined;

  constructor(
    endpoints: readonly string[],
    private readonly timeoutMs: number,
    connection: EtcdConnection = { tls: undefined, user: undefined },
  ) {
    // Its own connection: bulk transactions do not share a TCP stream with the lease keepalives
    // and watches that etcd3's client carries, so a burst of writes cannot delay a keepalive.
    const options = { ...ETCD_CHANNEL_OPTIONS, ...tlsChannelOptions(connection.tls), 'grpc.use_local_subchannel_pool': 1 };
    const creds = connection.tls ? tlsCredentials(connection.tls) : credentials.createInsecure();
    this.clients = endpoints.map((e) => new Client(e.replace(/^https?:\/\//, ''), creds, options));
    this.auth =
      connection.user &&
      new EtcdAuth(connection.user, (name, password) =>
        this.send('/etcdserverpb.Auth/Authenticate', encodeAuthenticate(name, password), decodeAuthenticateResponse, new Metadata()),
      );
  }

  /** One unary call with our own bytes in and a decoder for the answer, with etcd's token when there is a user. */
  async unary<T>(method: string, request: Uint8Array, decode: (b: Buffer) => T): Promise<T> {
    if (!this.auth) return this.send(method, request, decode, new Metadata());
    const token = await this.auth.current();
    try {
      return await this.send(method, request, decode, tokenMetadata(token));
    } catch (err) {
      // etcd checks the token before it proposes anything, so the refused request was not applied.
      if (!isStaleToken(err)) throw err;
      await this.auth.invalidate(token);
      return this.send(method, request, decode, tokenMetadata(await this.auth.current()));
    }
  }

  private send<T>(method: string, request: Uint8Array, decode: (b: Buffer) => T, metadata: Metadata): Promise<T> {
    let index = this.current;
    return retryStore(
      () => {
        index = this.current;
        return this.once(this.clients[index]!, method, request, decode, metadata);
      },
      ETCD_RESEND,
      () => {
        // Move on from the endpoint that refused, unless another call already did.
        if (this.current === index) this.current = (index + 1) % this.clients.length;
      },
    );
  }

  private once<T>(client: Client, method: string, request: Uint8Array, decode: (b: Buffer) => T, metadata: Metadata): Promise<T> {
    return new Promise((resolve, reject) => {
      client.makeUnaryRequest(method, toBuffer, decode, request, metadata, { deadline: Date.now() + this.timeoutMs }, (err, res) =>
        err ? reject(err) : resolve(res as T),
      );
    });
  }

  close(): void {
    for (const c of this.clients) c.close();
  }
}

const toBuffer = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
