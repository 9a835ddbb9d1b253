/**
 * One attempt as the agent streams it: log records from the executor's spool
 * go out with a bounded window of unacknowledged bytes, then the result; the
 * spool is dropped only after the control plane acknowledged the result. A
 * dropped connection stops the pump; the next connection resumes it from the
 * sequence number the control plane says it holds.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { FailureCategory, JobState, LogStream, type ResourceUsage } from '../../proto/gen/runmesh/v1/job.js';
import {
  PROGRESS_FILE,
  type AttemptHandle,
  type AttemptUsage,
  type ExitFailure,
  type ExitStatus,
  type LogRecord,
} from '../executor/executor.js';
import { AttemptProgress } from '../progress/attempt.js';
import { maskText, RecordMasker, type Matcher } from '../masking/index.js';
import { delay } from '../../transport/retry.js';
import type { Link } from './link.js';

const WINDOW_BYTES = 32 * 1024 * 1024;
/** Re-send the result (and any unacknowledged log) if no ResultAck arrives in this time. */
const RESULT_ACK_TIMEOUT_MS = 15_000;
/**
 * Re-send unacknowledged log records when no LogAck moved on in this time:
 * the control plane drops what it cannot keep (its disk is full) unacknowledged,
 * and we must not wait for it forever with a full window.
 */
const LOG_ACK_TIMEOUT_MS = 15_000;

const FAILURES: Record<ExitFailure, FailureCategory> = {
  none: FailureCategory.FAILURE_CATEGORY_UNSPECIFIED,
  exit_code: FailureCategory.FAILURE_CATEGORY_EXIT_CODE,
  timeout: FailureCategory.FAILURE_CATEGORY_TIMEOUT,
  cancelled: FailureCategory.FAILURE_CATEGORY_CANCELLED,
  could_not_start: FailureCategory.FAILURE_CATEGORY_COULD_NOT_START,
  not_runnable: FailureCategory.FAILURE_CATEGORY_NOT_RUNNABLE,
  agent_lost: FailureCategory.FAILURE_CATEGORY_AGENT_LOST,
  disk_full: FailureCategory.FAILURE_CATEGORY_DISK_FULL,
  oom: FailureCategory.FAILURE_CATEGORY_OUT_OF_MEMORY,
};

/** The wire form of what an attempt used; absent when it had no cgroup to read it from. */
function usageOf(u: AttemptUsage | undefined): ResourceUsage | undefined {
  if (!u) return undefined;
  return { peakMemoryBytes: BigInt(Math.max(0, Math.round(u.peakMemoryBytes))), cpuSeconds: u.cpuSeconds };
}

/** What the agent's work after an attempt's exit (its caches, its artifacts) adds to the attempt's result. */
export interface AfterExit {
  /** Why the attempt's artifacts were not stored; '' when they were, or it had none. */
  readonly artifactsError: string;
  /** The job named artifacts and none of its files matched. */
  readonly artifactsUnmatched: boolean;
  /** An artifacts error fails a job that succeeded (JobSpec.artifacts_optional unset). */
  readonly failsJob: boolean;
}

/** How an attempt is named in the agent's maps: `jobId/attempt`. */
export function attemptKey(a: { readonly jobId: string; readonly attempt: number }): string {
  return `${a.jobId}/${a.attempt}`;
}

export class AttemptStream {
  private acked = 0;
  private inflight: Array<{ seq: number; bytes: number }> = [];
  private inflightBytes = 0;
  private wake: (() => void) | undefined;
  private pump: AbortController | undefined;
  /** The connection the stream runs on (the latest attach). */
  private link: Link | undefined;
  private status: ExitStatus | undefined;
  /** Set when the agent hands the attempt back on shutdown instead of reporting it. */
  handBack = false;
  /**
   * Set when the agent kills the attempt for a reason of its own (cut off
   * from every control plane too long): if the kill is what ended it, it is
   * reported lost with this message rather than cancelled (which would end the job).
   */
  lostReason: string | undefined;
  readonly done: Promise<void>;
  private resolveDone!: () => void;
  /** What the job reports (`::progress` lines, its progress file), parsed from the masked output. */
  private readonly progress: AttemptProgress;
  /** beforeResult's run: once, whichever connection reports the result. */
  private resultReady: Promise<AfterExit | undefined> | undefined;
  /** Aborted once the attempt is done with (reported, or dropped): what beforeResult still does is for nobody. */
  private readonly over = new AbortController();

  constructor(
    readonly handle: AttemptHandle,
    private readonly log: Logger,
    /** The attempt's secret values: masked in every record and in the result's message before they leave the host. */
    private readonly masks: Matcher,
    /**
     * Run once the attempt has exited, before its result is sent (the agent
     * saves its caches, uploads its artifacts); never rejects. `signal`:
     * aborted once the attempt is done with.
     */
    private readonly beforeResult?: (s: ExitStatus, signal: AbortSignal) => Promise<AfterExit | undefined>,
  ) {
    this.done = new Promise((r) => (this.resolveDone = r));
    this.progress = new AttemptProgress(handle, join(handle.dir, PROGRESS_FILE), masks, log);
    void this.done.then(() => {
      this.over.abort();
      this.progress.close();
    });
    handle.exited().then(
      (s) => (this.status = s),
      (err: unknown) => log.error({ err }, 'could not learn how the attempt ended'),
    );
  }

  get key(): string {
    return attemptKey(this.handle);
  }

  get exited(): boolean {
    return this.status !== undefined;
  }

  /** Starts (or restarts) streaming over `link` from record `from`. */
  attach(link: Link, from: number): void {
    this.pump?.abort();
    if (link.signal.aborted) return; // gone already: the next connection's Welcome resumes us
    const pump = new AbortController();
    this.pump = pump;
    this.link = link;
    link.signal.addEventListener('abort', () => pump.abort(), { once: true });
    this.acked = from;
    this.inflight = [];
    this.inflightBytes = 0;
    this.progress.attach(link);
    this.watchAcks(link, pump.signal);
    void this.run(link, from, pump.signal).catch((err: unknown) => {
      if (!pump.signal.aborted) this.log.error({ err }, 'attempt stream failed');
    });
  }

  /** Every LOG_ACK_TIMEOUT_MS: records in flight and no ack since the last look, send again from the last ack. */
  private watchAcks(link: Link, signal: AbortSignal): void {
    let seen = this.acked;
    const timer = setInterval(() => {
      if (this.inflight.length > 0 && this.acked === seen) {
        this.log.warn({ from: this.acked, in_flight: this.inflight.length }, 'log records not acknowledged, resending');
        this.attach(link, this.acked);
      }
      seen = this.acked;
    }, LOG_ACK_TIMEOUT_MS);
    timer.unref();
    signal.addEventListener('abort', () => clearInterval(timer), { once: true });
  }

  /**
   * The control plane holds the records before `nextSeq`. With `resend` it
   * lacks the ones from there on (a gap, or our result counted more): the
   * stream starts again from `nextSeq` at once, on the same connection.
   */
  onLogAck(nextSeq: number, resend: boolean): void {
    if (resend) {
      const link = this.link;
      if (link && !link.signal.aborted) {
        this.log.warn({ from: nextSeq }, 'control plane asked for log records again, resending');
        this.attach(link, nextSeq);
      }
      return;
    }
    if (nextSeq > this.acked) this.acked = nextSeq;
    while (this.inflight.length > 0 && (this.inflight[0]?.seq ?? Infinity) < this.acked)
      this.inflightBytes -= this.inflight.shift()?.bytes ?? 0;
    this.wake?.();
  }

  async onResultAck(): Promise<void> {
    this.pump?.abort();
    await this.handle.remove().catch((err: unknown) => this.log.warn({ err }, 'could not remove workspace'));
    this.log.info('attempt reported');
    this.resolveDone();
  }

  /** Drops an attempt the control plane no longer wants. */
  async abandon(): Promise<void> {
    this.pump?.abort();
    try {
      await this.handle.cancel(0, 'abandoned by the control plane');
      await this.handle.exited();
      await this.handle.remove();
    } catch (err) {
      this.log.error({ err }, 'could not drop an abandoned attempt');
    }
    this.resolveDone();
  }

  private async run(link: Link, from: number, signal: AbortSignal): Promise<void> {
    const ids = { jobId: this.handle.jobId, attempt: this.handle.attempt };
    if (!this.exited) link.send({ msg: { $case: 'jobUpdate', value: { ...ids, state: JobState.JOB_STATE_RUNNING } } });
    for await (const r of this.outgoing(from, signal)) {
      while (this.inflightBytes > WINDOW_BYTES && !signal.aborted) await this.waitAck(signal);
      if (signal.aborted) return;
      this.inflight.push({ seq: r.seq, bytes: r.data.length });
      this.inflightBytes += r.data.length;
      const stream = r.stream === 'stdout' ? LogStream.LOG_STREAM_STDOUT : LogStream.LOG_STREAM_STDERR;
      if (!link.send({ msg: { $case: 'logChunk', value: { ...ids, seq: r.seq, stream, data: r.data } } })) await link.drained();
    }
    if (signal.aborted) return;
    const s = await this.handle.exited();
    await this.progress.end(); // its last state goes before the result
    const after = await (this.resultReady ??= this.beforeResult?.(s, this.over.signal) ?? Promise.resolve(undefined));
    if (signal.aborted) return;
    const { failure, message } = this.verdict(s, after);
    link.send({
      msg: {
        $case: 'jobResult',
        value: {
          ...ids,
          exitCode: s.exitCode,
          failure,
          message: maskText(this.masks, message),
          logRecords: s.records,
          startedAt: new Date(s.startedAt).toISOString(),
          finishedAt: new Date(s.finishedAt).toISOString(),
          usage: usageOf(s.usage),
          artifactsError: maskText(this.masks, after?.artifactsError ?? ''),
          artifactsUnmatched: after?.artifactsUnmatched ?? false,
        },
      },
    });
    await delay(RESULT_ACK_TIMEOUT_MS, signal);
    if (!signal.aborted) {
      this.log.warn({ acked: this.acked }, 'no result acknowledgement, re-sending');
      this.attach(link, this.acked);
    }
  }

  /**
   * The records to send from `from` on, masked, each shown to the progress
   * parser (which takes each record once, in sequence). With secrets to mask,
   * the masking is replayed from record 0 (records.ts: it is a function of
   * every record before), and those before `from` are dropped: a resend costs
   * a read of the spool from its start, and gives what the first send gave.
   * Without, the read starts at `from`, or earlier where the parser has not
   * been yet (a restarted agent's first resume reads from record 0 once).
   */
  private async *outgoing(from: number, signal: AbortSignal): AsyncGenerator<LogRecord> {
    if (this.masks.empty) {
      for await (const r of this.handle.records(Math.min(from, this.progress.next), signal)) {
        this.progress.record(r);
        if (r.seq >= from) yield r;
      }
      return;
    }
    const masker = new RecordMasker(this.masks);
    const out = (m: LogRecord): boolean => {
      this.progress.record(m);
      return m.seq >= from;
    };
    for await (const r of this.handle.records(0, signal)) for (const m of masker.push(r)) if (out(m)) yield m;
    if (signal.aborted) return;
    for (const m of masker.end()) if (out(m)) yield m;
  }

  /**
   * What the result says: the attempt's own exit, unless the agent handed it
   * back or killed it, or it succeeded but its artifacts (not optional) were
   * not stored.
   */
  private verdict(s: ExitStatus, after: AfterExit | undefined): { failure: FailureCategory; message: string } {
    if (this.handBack)
      return { failure: FailureCategory.FAILURE_CATEGORY_PREEMPTED, message: 'agent shut down before the job finished; handed back' };
    if (this.lostReason !== undefined && s.failure === 'cancelled')
      return { failure: FailureCategory.FAILURE_CATEGORY_AGENT_LOST, message: this.lostReason };
    if (s.failure === 'none' && after?.failsJob && after.artifactsError !== '')
      return { failure: FailureCategory.FAILURE_CATEGORY_ARTIFACTS, message: `artifacts: ${after.artifactsError}` };
    return { failure: FAILURES[s.failure], message: s.message };
  }

  private waitAck(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.wake = undefined;
        signal.removeEventListener('abort', done);
        resolve();
      };
      this.wake = done;
      signal.addEventListener('abort', done, { once: true });
    });
  }
}
