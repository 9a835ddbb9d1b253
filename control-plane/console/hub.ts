/**
 * The console's one subscription to the cluster, fanned out: a single
 * listener on the job tracker feeds every open event stream (each sees only
 * its caller's tenants), batched every BATCH_MS so a burst of a thousand job
 * changes is one event per client, not a thousand. Agents are read from the
 * cluster view once a second while anyone who may see them listens, and sent
 * only when they changed. The same listener keeps the overview's figures:
 * jobs ended per minute, by state, and the latest failures.
 */
import { JobState } from '../../proto/gen/runmesh/v1/job.js';
import { canSee, type Principal } from '../auth/index.js';
import { isTerminal } from '../jobs/state.js';
import type { JobTracker } from '../jobs/tracker.js';
import type { EventStream } from './sse.js';
import { jobSummary, stateName } from './views.js';
import type { AgentView, JobSummary } from './wire.js';

const BATCH_MS = 100;
const AGENTS_EVERY_MS = 1000;
/** Minutes of per-minute figures kept. */
const MINUTES = 30;
const RECENT_FAILURES = 20;
/** Open event streams per peer; past it, new ones are refused (429). */
export const MAX_STREAMS = 500;

interface Listener {
  stream: EventStream;
  who: Principal;
  jobs: boolean;
  agents: boolean;
  pending: Map<string, JobSummary>;
}

export interface HubSources {
  tracker: JobTracker;
  /** Every agent, as the console shows them. */
  agents(): AgentView[];
}

export class Hub {
  private readonly listeners = new Set<Listener>();
  private readonly perMinute = new Map<number, Map<string, number>>();
  private readonly failures: Array<{ tenant: string; job: JobSummary }> = [];
  private readonly unsubscribe: () => void;
  private flushTimer: NodeJS.Timeout | undefined;
  private agentsTimer: NodeJS.Timeout | undefined;
  private lastAgents = '';

  constructor(private readonly s: HubSources) {
    this.unsubscribe = s.tracker.subscribe((v) => this.changed(v.record.job));
  }

  get streams(): number {
    return this.listeners.size;
  }

  /** Starts sending `stream` what `who` may see: jobs, agents, or both. */
  add(stream: EventStream, who: Principal, may: { jobs: boolean; agents: boolean }): void {
    const l: Listener = { stream, who, ...may, pending: new Map() };
    this.listeners.add(l);
    stream.onClose(() => this.listeners.delete(l));
    if (l.agents) {
      stream.send('agents', this.s.agents());
      this.agentsTimer ??= setInterval(() => this.pollAgents(), AGENTS_EVERY_MS);
    }
  }

  /** Jobs ended per minute over the last MINUTES, by state, oldest first. */
  finishedPerMinute(now = Date.now()): Array<{ minute: string; byState: Record<string, number> }> {
    const current = Math.floor(now / 60_000);
    const out = [];
    for (let m = current - MINUTES + 1; m <= current; m++)
      out.push({ minute: new Date(m * 60_000).toISOString(), byState: Object.fromEntries(this.perMinute.get(m) ?? []) });
    return out;
  }

  /** The latest failed, timed-out or dead jobs `who` may see, newest first. */
  recentFailures(who: Principal): JobSummary[] {
    return this.failures.filter((f) => canSee(who, f.tenant)).map((f) => f.job);
  }

  close(): void {
    this.unsubscribe();
    clearTimeout(this.flushTimer);
    clearInterval(this.agentsTimer);
    for (const l of this.listeners) l.stream.close();
  }

  private changed(job: Parameters<typeof jobSummary>[0]): void {
    const tenant = job.spec?.tenant ?? '';
    if (isTerminal(job.state)) this.ended(job, tenant);
    if (this.listeners.size === 0) return;
    const summary = jobSummary(job);
    for (const l of this.listeners) if (l.jobs && canSee(l.who, tenant)) l.pending.set(job.id, summary);
    this.flushTimer ??= setTimeout(() => this.flush(), BATCH_MS);
  }

  private ended(job: Parameters<typeof jobSummary>[0], tenant: string): void {
    const minute = Math.floor(Date.now() / 60_000);
    const counts = this.perMinute.get(minute) ?? new Map<string, number>();
    this.perMinute.set(minute, counts);
    const state = stateName(job.state);
    counts.set(state, (counts.get(state) ?? 0) + 1);
    for (const m of this.perMinute.keys()) if (m <= minute - MINUTES) this.perMinute.delete(m);
    if (job.state !== JobState.JOB_STATE_SUCCEEDED && job.state !== JobState.JOB_STATE_CANCELLED) {
      this.failures.unshift({ tenant, job: jobSummary(job) });
      this.failures.length = Math.min(this.failures.length, RECENT_FAILURES);
    }
  }

  private flush(): void {
    this.flushTimer = undefined;
    for (const l of this.listeners) {
      if (l.pending.size === 0) continue;
      l.stream.send('jobs', [...l.pending.values()]);
      l.pending.clear();
    }
  }

  private pollAgents(): void {
    const watching = [...this.listeners].filter((l) => l.agents);
    if (watching.length === 0) {
      clearInterval(this.agentsTimer);
      this.agentsTimer = undefined;
      return;
    }
    const agents = this.s.agents();
    const text = JSON.stringify(agents);
    if (text === this.lastAgents) return;
    this.lastAgents = text;
    for (const l of watching) l.stream.send('agents', agents);
  }
}
