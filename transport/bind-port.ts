/** grpc-js's callback bind as a promise, with failures named after the address. */
import type * as grpc from '@grpc/grpc-js';
import { TransportError } from './errors.js';

/** Binds `port` (a grpc-js port string) and resolves with the port number grpc-js chose. */
export function bindPort(server: grpc.Server, port: string, credentials: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(port, credentials, (err, bound) => {
      if (err === null) resolve(bound);
      else reject(new TransportError(`cannot bind ${port}: ${err.message}`, { cause: err }));
    });
  });
}

/** Stops listening on a bound port; a port grpc-js no longer knows (server shut down) is fine. */
export function unbindQuietly(server: grpc.Server, port: string): void {
  try {
    server.unbind(port);
  } catch {
    // Only thrown for unresolved port 0 or after shutdown: nothing is listening either way.
  }
}
