/** A temp work dir, an executor on it, and the helpers every executor test needs; `cleanup` leaves no process behind. */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { AttemptHandle, AttemptSpec, Executor, LogRecord } from '../executor.js';
import { createExecutor, type ExecutorOptions } from '../index.js';
import { removeAgentCgroups } from './cgroups.js';
import { groupMembers, killLeftovers } from './proc.js';

export const silent = pino({ level: process.env.RUNMESH_TEST_LOG ?? 'silent' });

/**
 * One way of running attempts: the contract tests run against each. The
 * sandbox needs bubblewrap, and is left out where it is not installed (said
 * by `available`).
 */
export interface Variant {
  readonly name: string;
  readonly options: Partial<ExecutorOptions>;
  readonly spec: Partial<AttemptSpec>;
}

export const SHELL: Variant = { name: 'shell executor', options: {}, spec: {} };
export const VARIANTS: readonly Variant[] = [
  SHELL,
  { name: 'shell executor, process group only (no cgroups)', options: { cgroups: false }, spec: {} },
  { name: 'sandbox executor', options: {}, spec: { executor: 'sandbox' } },
];

/** The variants this host can run (the sandbox only where bubblewrap works). */
export function availableVariants(): Variant[] {
  const workDir = mkdtempSync(join(tmpdir(), 'runmesh-probe-'));
  const probe = createExecutor({ workDir, logger: silent, standby: false });
  const offered = probe.describe().executors;
  probe.close();
  rmSync(workDir, { recursive: true, force: true });
  removeAgentCgroups(workDir);
  return VARIANTS.filter((v) => offered.includes(v.spec.executor ?? 'shell'));
}

export class Fixture {
  readonly workDir = mkdtempSync(join(tmpdir(), 'runmesh-exec-'));
  private readonly executors: Executor[] = [];
  readonly executor: Executor;
  private seq = 0;

  constructor(readonly variant: Variant = SHELL) {
    this.executor = this.reopen();
  }

  /** A fresh executor on the same work dir, as a restarted agent would build. */
  reopen(options: Partial<ExecutorOptions> = {}): Executor {
    const e = createExecutor({ workDir: this.workDir, logger: silent, ...this.variant.options, ...options });
    this.executors.push(e);
    return e;
  }

  spec(job: Partial<AttemptSpec>): AttemptSpec {
    return {
      jobId: `j_t${process.pid}x${this.seq++}`,
      attempt: 1,
      argv: [],
      script: '',
      env: {},
      deadline: Date.now() + 120_000,
      graceSeconds: 5,
      executor: 'shell',
      limits: { memoryBytes: 0, cpuMillis: 0, cpuWeight: 0, pids: 0 },
      network: true,
      ...this.variant.spec,
      ...job,
    };
  }

  async cleanup(): Promise<void> {
    for (const e of this.executors) e.close();
    const root = join(this.workDir, 'attempts');
    const dirs = safeList(root).map((d) => join(root, d));
    for (const dir of dirs)
      killLeftovers(
        dir,
        [pgidOf(dir)].filter((p) => p > 0),
      );
    rmSync(this.workDir, { recursive: true, force: true });
    removeAgentCgroups(this.workDir);
  }
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

export function pgidOf(dir: string): number {
  try {
    return Number(readFileSync(join(dir, 'job.pgid'), 'utf8'));
  } catch {
    return 0;
  }
}

export function supervisorPidOf(dir: string): number {
  return Number(readFileSync(join(dir, 'supervisor.pid'), 'utf8'));
}

/** Every record from `from` to the end, bounded in time. */
export async function collect(h: AttemptHandle, from = 0, timeoutMs = 60_000): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  for await (const r of h.records(from, AbortSignal.timeout(timeoutMs))) out.push(r);
  return out;
}

/** The first `n` records of an attempt that may still be running. */
export async function collectFirst(h: AttemptHandle, n: number, timeoutMs = 20_000): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  for await (const r of h.records(0, AbortSignal.timeout(timeoutMs))) {
    out.push(r);
    if (out.length >= n) break;
  }
  return out;
}

export function text(records: LogRecord[], stream: 'stdout' | 'stderr'): string {
  return Buffer.concat(records.filter((r) => r.stream === stream).map((r) => r.data)).toString();
}

export const groupGone = (pgid: number): boolean => groupMembers(pgid).length === 0;
