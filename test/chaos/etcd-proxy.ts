/**
 * A TCP proxy between one peer and etcd, so that the fault suite can cut that
 * peer off from the store alone: `cut()` resets every connection through it
 * and refuses new ones (the peer sees etcd unreachable, the others carry on),
 * `heal()` lets connections through again.
 */
import { connect, createServer, type Socket } from 'node:net';

export interface EtcdProxy {
  /** The store URL a peer is given (`--store`). */
  readonly storeUrl: string;
  cut(): void;
  heal(): void;
  close(): Promise<void>;
}

/** A proxy to etcd at `endpoint` (http://host:port). */
export async function startEtcdProxy(endpoint: string): Promise<EtcdProxy> {
  const target = new URL(endpoint);
  const open = new Set<Socket>();
  let isCut = false;
  const server = createServer((client) => {
    if (isCut) return void client.resetAndDestroy();
    const upstream = connect(Number(target.port), target.hostname);
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      open.add(a);
      a.on('error', () => b.destroy());
      a.on('close', () => {
        open.delete(a);
        b.destroy();
      });
      a.pipe(b);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('etcd proxy: no port');
  return {
    storeUrl: `etcd://127.0.0.1:${address.port}`,
    cut() {
      isCut = true;
      for (const s of open) s.resetAndDestroy();
    },
    heal() {
      isCut = false;
    },
    async close() {
      for (const s of open) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
