/**
 * Coalesces one agent session's progress reports: at most one store write
 * per attempt per `everyMs`, the latest report winning, never two writes of
 * one attempt at once. A job that prints `::progress` ten thousand times a
 * second costs the store (and every watcher) one write a second. What is
 * still held when the attempt's result arrives goes into the result's own
 * write (`take`); what is held when the session ends is dropped (the agent
 * sends its whole state again on its next connection).
 */
import type { JobProgress } from '../../proto/gen/runmesh/v1/agent.js';

interface Slot {
  lastWrite: number;
  /** The latest report; `pending` while it is not yet handed to a write. */
  latest: JobProgress;
  pending: boolean;
  timer: NodeJS.Timeout | undefined;
  writing: boolean;
}

export class ProgressCoalescer {
  private readonly slots = new Map<string, Slot>();

  constructor(
    /** Writes one report; resolves once it is stored (or given up on). */
    private readonly write: (p: JobProgress) => Promise<void>,
    private readonly everyMs = 1000,
  ) {}

  offer(p: JobProgress): void {
    const key = slotKey(p.jobId, p.attempt);
    let s = this.slots.get(key);
    if (!s) this.slots.set(key, (s = { lastWrite: 0, latest: p, pending: true, timer: undefined, writing: false }));
    s.latest = p;
    s.pending = true;
    this.arm(key, s);
  }

  /**
   * The attempt's latest report (its timer stopped), to store with its
   * result: a write of it may be queued behind the result, and would then find
   * the attempt over. The attempt is forgotten.
   */
  take(jobId: string, attempt: number): JobProgress | undefined {
    const key = slotKey(jobId, attempt);
    const s = this.slots.get(key);
    if (!s) return undefined;
    clearTimeout(s.timer);
    this.slots.delete(key);
    return s.latest;
  }

  /** Drops everything held (the session ended). */
  close(): void {
    for (const s of this.slots.values()) clearTimeout(s.timer);
    this.slots.clear();
  }

  private arm(key: string, s: Slot): void {
    if (s.timer || s.writing || !s.pending) return;
    const wait = Math.max(0, s.lastWrite + this.everyMs - Date.now());
    s.timer = setTimeout(() => this.flush(key, s), wait);
    s.timer.unref();
  }

  private flush(key: string, s: Slot): void {
    s.timer = undefined;
    const p = s.latest;
    if (!s.pending || this.slots.get(key) !== s) return;
    s.pending = false;
    s.writing = true;
    s.lastWrite = Date.now();
    void this.write(p).finally(() => {
      s.writing = false;
      if (this.slots.get(key) === s) this.arm(key, s);
    });
  }
}

function slotKey(jobId: string, attempt: number): string {
  return `${jobId}/${attempt}`;
}
