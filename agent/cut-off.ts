/**
 * How long an agent cut off from every control plane keeps running its
 * attempts. While it has no connection nobody can see their output or
 * results, and after the heartbeat timeout the control plane has handled
 * them as lost (and may run them elsewhere): past `--disconnected-grace` the
 * agent kills them rather than let them run on for nobody. The default is
 * never: a blip, or a control plane restarting, costs no job. Assignments
 * only arrive on a connection, so a cut-off agent takes no new work anyway.
 */
import type { Logger } from 'pino';

/** setTimeout's ceiling: a longer grace is re-armed. */
const MAX_TIMER_MS = 2_147_483_647;

export class CutOffWatch {
  private timer: NodeJS.Timeout | undefined;
  private since: number | undefined;
  private expired = false;

  /**
   * `graceMs`: Infinity for never. `onExpired` runs once per cut-off, when
   * the agent has been without a connection for `graceMs`.
   */
  constructor(
    private readonly graceMs: number,
    private readonly log: Logger,
    private readonly onExpired: (cutOffMs: number) => void,
  ) {}

  /** True once the grace has run out in the current cut-off: attempts that start now are killed too. */
  get cutOff(): boolean {
    return this.expired;
  }

  /** A connection got as far as Welcome. */
  connected(): void {
    if (this.expired) this.log.info({ cut_off_ms: Date.now() - (this.since ?? Date.now()) }, 'connected again after the cut-off');
    clearTimeout(this.timer);
    this.timer = undefined;
    this.since = undefined;
    this.expired = false;
  }

  /** No connection (at start, or the last one ended): the grace starts, unless it runs already. */
  disconnected(): void {
    if (this.since !== undefined || !Number.isFinite(this.graceMs)) return;
    this.since = Date.now();
    this.arm();
  }

  private arm(): void {
    const left = (this.since ?? Date.now()) + this.graceMs - Date.now();
    this.timer = setTimeout(() => (left > MAX_TIMER_MS ? this.arm() : this.expire()), Math.min(Math.max(0, left), MAX_TIMER_MS));
    this.timer.unref();
  }

  private expire(): void {
    this.timer = undefined;
    this.expired = true;
    this.onExpired(Date.now() - (this.since ?? Date.now()));
  }

  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
