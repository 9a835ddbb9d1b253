/**
 * Waits for something to change in an attempt directory: the spool growing,
 * status.json appearing. fs.watch (inotify) wakes readers at once; a short
 * poll covers filesystems where watching is unreliable or unavailable, so a
 * missed event costs at most one poll interval and never a busy spin.
 */
import { watch, type FSWatcher } from 'node:fs';

/** Poll interval when no event arrives. */
export const POLL_MS = 50;

export class DirChanges {
  private readonly watcher: FSWatcher | undefined;
  private changed = false;
  private wake: (() => void) | undefined;
  private closed = false;

  constructor(dir: string) {
    try {
      this.watcher = watch(dir, { persistent: false }, () => this.poke());
      this.watcher.on('error', () => undefined); // e.g. the directory was removed: polling carries on
    } catch {
      this.watcher = undefined; // no inotify here: polling alone
    }
  }

  private poke(): void {
    this.changed = true;
    this.wake?.();
  }

  /** Resolves on the next change (or one seen since the last call), after `POLL_MS` at most, or on abort. */
  next(signal: AbortSignal): Promise<void> {
    if (this.changed || this.closed || signal.aborted) {
      this.changed = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.wake = undefined;
        this.changed = false;
        resolve();
      };
      const timer = setTimeout(done, POLL_MS);
      signal.addEventListener('abort', done, { once: true });
      this.wake = done;
    });
  }

  /** Stops watching. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.watcher?.close();
    this.wake?.();
  }
}
