/**
 * One attempt's progress as the agent streams it: the masked stdout records
 * (each parsed once, in sequence, however often the log is re-sent) and the
 * progress file (read every FILE_POLL_MS while the job runs, and once more at
 * its end) feed one ProgressReport, and its state goes to the control plane
 * as JobProgress at most once per SEND_EVERY_MS (the latest state winning),
 * once more right before the result, and again on every new connection. Only
 * over a connection whose control plane said it takes JobProgress.
 */
import type { Logger } from 'pino';
import type { LogRecord } from '../executor/executor.js';
import type { Matcher } from '../masking/index.js';
import type { ConnectRequest } from '../../proto/gen/runmesh/v1/agent.js';
import { JOB_PROGRESS_FEATURE } from '../../proto/protocol.js';
import { CommandParser } from './commands.js';
import { ProgressFile } from './file.js';
import { ProgressReport } from './report.js';

/** The environment variable naming the progress file. */
export const PROGRESS_ENV = 'RUNMESH_PROGRESS';

const SEND_EVERY_MS = 1000;

/** What progress needs of a connection (session/link.ts's Link is one). */
export interface ProgressLink {
  readonly signal: AbortSignal;
  send(msg: ConnectRequest): boolean;
  readonly features?: ReadonlySet<string>;
}
const FILE_POLL_MS = 250;

export class AttemptProgress {
  private readonly report = new ProgressReport();
  private readonly stdout = new CommandParser();
  private readonly file: ProgressFile;
  /** Records before this one have been parsed. */
  private parsed = 0;
  /** Where stdout ends so far: the groups left open at the end close there. */
  private stdoutEnd: { seq: number; offset: number } | undefined;
  private ended = false;
  private link: ProgressLink | undefined;
  private timer: NodeJS.Timeout | undefined;
  private sentAt = 0;
  private readonly stop = new AbortController();
  private readonly tailing: Promise<void>;

  constructor(
    private readonly ids: { readonly jobId: string; readonly attempt: number },
    path: string,
    masks: Matcher,
    private readonly log: Logger,
  ) {
    this.file = new ProgressFile(path, masks, (c) => this.report.add(c));
    this.tailing = this.tail();
  }

  /** The next record to parse: a stream that starts later must read from here (records before are skipped). */
  get next(): number {
    return this.parsed;
  }

  /** Takes a masked record, in sequence; one parsed already (a resend) is skipped. */
  record(r: LogRecord): void {
    if (r.seq !== this.parsed) return;
    this.parsed++;
    if (r.stream !== 'stdout') return;
    this.stdoutEnd = { seq: r.seq, offset: r.data.length };
    for (const f of this.stdout.push(r.data, r.seq)) this.report.add(f.command, f);
    this.changed();
  }

  /** The output is complete (every record was taken): last lines, the file's rest, open groups closed. Idempotent. */
  async end(): Promise<void> {
    if (!this.ended) {
      this.ended = true;
      this.stop.abort();
      await this.tailing; // one reader of the file at a time
      for (const f of this.stdout.end()) this.report.add(f.command, f);
      if (this.stdoutEnd) this.report.closeOpenGroups(this.stdoutEnd);
      await this.file.end().catch((err: unknown) => this.log.warn({ err }, 'could not read the progress file'));
    }
    this.flush();
  }

  /** Sends over `link` from now on; the whole state once at once, since a new connection may reach a control plane that lacks it. */
  attach(link: ProgressLink): void {
    this.link = link;
    const p = this.report.snapshot(this.ids.jobId, this.ids.attempt);
    if (!this.report.empty && this.accepts(link)) link.send({ msg: { $case: 'jobProgress', value: p } });
  }

  close(): void {
    this.stop.abort();
    clearTimeout(this.timer);
  }

  private accepts(link: ProgressLink): boolean {
    return !link.signal.aborted && link.features?.has(JOB_PROGRESS_FEATURE) === true;
  }

  /** Something may have changed: send within SEND_EVERY_MS of the last send. */
  private changed(): void {
    if (this.timer || this.ended) return;
    const wait = Math.max(0, this.sentAt + SEND_EVERY_MS - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, wait);
    this.timer.unref();
  }

  /** Sends the state now if it changed (and the connection takes it). */
  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const link = this.link;
    if (!link || !this.accepts(link)) return;
    const p = this.report.take(this.ids.jobId, this.ids.attempt);
    if (!p) return;
    this.sentAt = Date.now();
    link.send({ msg: { $case: 'jobProgress', value: p } });
  }

  /** Reads the progress file until the output ends (end() reads it a last time). */
  private async tail(): Promise<void> {
    const signal = this.stop.signal;
    while (!signal.aborted) {
      try {
        await this.file.read();
        this.changed();
      } catch (err) {
        this.log.warn({ err }, 'could not read the progress file');
      }
      await pause(FILE_POLL_MS, signal);
    }
  }
}

/** Waits `ms` or until `signal` aborts, without keeping the process alive: the agent exits once its work is done, polls or not. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    t.unref();
    signal.addEventListener('abort', done, { once: true });
  });
}
