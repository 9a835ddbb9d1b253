/**
 * Waits for something to change in an attempt directory: the spool growing,
 * status.json appearing. fs.watch (inotify) wakes readers at once; a short
 * poll covers filesystems where watching is unreliable or unavailable, so a
 * missed event costs at most one poll interval and never a busy spin.
 *
 * Each wait also says whether the change may concern a file other than the
 * `routine` ones (the spool, which grows on every write of the job's output):
 * a reader then opens status.json only when it may have appeared, not once
 * per chunk of output. A poll that saw no event, or an event without a file
 * name, may concern anything.
 */
import { watch, type FSWatcher } from 'node:fs';

/** Poll interval when the directory cannot be watched. */
export const POLL_MS = 50;
/**
 * Poll interval beside a working watch: a safety net only. Every running
 * attempt has two readers (its log pump and its exit watch), and a 50 ms
 * poll each was most of an agent's file reads with 16 jobs running.
 */
export const WATCHED_POLL_MS = 500;

export class DirChanges {
  private readonly watcher: FSWatcher | undefined;
  private changed = false;
  /** Whether a change since the last wait may concern a file other than the routine ones. */
  private other = false;
  private wake: (() => void) | undefined;
  private closed = false;
  private readonly routine: ReadonlySet<string>;

  /** `routine`: names of files in `dir` whose changes the caller expects all the time. */
  constructor(dir: string, routine: readonly string[] = []) {
    this.routine = new Set(routine);
    try {
      this.watcher = watch(dir, { persistent: false }, (_event, name) => this.poke(name));
      this.watcher.on('error', () => undefined); // e.g. the directory was removed: polling carries on
    } catch {
      this.watcher = undefined; // no inotify here: polling alone
    }
  }

  private poke(name: string | null): void {
    this.changed = true;
    if (!name || !this.routine.has(name)) this.other = true;
    this.wake?.();
  }

  /**
   * Resolves on the next change (or one seen since the last call), after
   * `POLL_MS` at most, or on abort: to false when only routine files changed.
   */
  next(signal: AbortSignal): Promise<boolean> {
    if (this.changed || this.closed || signal.aborted) return Promise.resolve(this.take());
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.wake = undefined;
        resolve(this.take());
      };
      const timer = setTimeout(done, this.watcher ? WATCHED_POLL_MS : POLL_MS);
      signal.addEventListener('abort', done, { once: true });
      this.wake = done;
    });
  }

  /** Whether to look beyond the routine files, and resets what was seen. */
  private take(): boolean {
    const any = this.other || !this.changed; // no event (a poll, an abort): anything may have changed
    this.changed = false;
    this.other = false;
    return any;
  }

  /** Stops watching. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.watcher?.close();
    this.wake?.();
  }
}
