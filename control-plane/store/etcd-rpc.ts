/**
 * A raw gRPC channel to etcd for the calls we encode ourselves (`etcd-wire`):
 * one grpc-js client per endpoint, the current one kept until it is
 * unreachable, then the next. A call refused because no connection could be
 * made is retried a few times with a short backoff (the request never left),
 * so an etcd restart costs a pause, not an error; anything else is the
 * caller's to decide.
 */
import { Client, credentials, status as Status, type ServiceError } from '@grpc/grpc-js';

const RETRIES = 3;
const RETRY_BASE_MS = 50;

export class EtcdRpc {
  private readonly clients: Client[];
  private current = 0;

  constructor(
    endpoints: readonly string[],
    private readonly timeoutMs: number,
  ) {
    this.clients = endpoints.map((e) => new Client(e.replace(/^https?:\/\//, ''), credentials.createInsecure()));
  }

  /** One unary call with our own bytes in and a decoder for the answer. */
  async unary<T>(method: string, request: Uint8Array, decode: (b: Buffer) => T): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const index = this.current;
      try {
        return await this.once(this.clients[index]!, method, request, decode);
      } catch (err) {
        if ((err as ServiceError).code !== Status.UNAVAILABLE || attempt >= RETRIES) throw err;
        if (this.current === index) this.current = (index + 1) % this.clients.length;
        await new Promise((r) => setTimeout(r, RETRY_BASE_MS * 2 ** attempt));
      }
    }
  }

  private once<T>(client: Client, method: string, request: Uint8Array, decode: (b: Buffer) => T): Promise<T> {
    return new Promise((resolve, reject) => {
      client.makeUnaryRequest(method, toBuffer, decode, request, { deadline: Date.now() + this.timeoutMs }, (err, res) => (err ? reject(err) : resolve(res as T)));
    });
  }

  close(): void {
    for (const c of this.clients) c.close();
  }
}

const toBuffer = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
