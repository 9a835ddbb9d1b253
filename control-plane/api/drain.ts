/** Back-pressure for server streams: wait until the client took what was written. */
import type { EventEmitter } from 'node:events';

/** Resolves once the stream's buffer drained, or the call is gone (`signal` aborted). */
export function drained(call: EventEmitter, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      call.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    call.once('drain', done);
    signal.addEventListener('abort', done, { once: true });
  });
}
