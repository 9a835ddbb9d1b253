/**
 * The history checker of the fault suite: what every scenario's run must
 * satisfy, read from the jobs' records and logs and from a ledger the jobs
 * write themselves on the host (the truth about what ran, which no record
 * can fake).
 *
 * - every submitted job reached a final state;
 * - no job ever had two live attempts;
 * - every acknowledged log record is readable: the log holds exactly the
 *   lines the job printed;
 * - no write from a fenced attempt was accepted: nothing after the terminal
 *   entry, and no entry of an attempt after a later one was assigned;
 * - no job ran to its end twice unless its earlier runs' attempts are
 *   recorded as lost (the record says so).
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { FailureCategory, JobState, type Job } from '../../proto/gen/runmesh/v1/job.js';
import type { TestClient } from '../support/client.js';
import { describeJob, endsAtTerminal, overlappingAttempts, waitAllDone } from '../support/mesh.js';

/** A job that prints `lines` numbered lines, `every` seconds apart, and records its start and end in `ledger`. */
export function ledgerScript(ledger: string, lines: number, every = 0.05, o: { slowFirstAttemptOnly?: boolean } = {}): string {
  // A re-run of a job whose first attempt only had to outlast a fault need not be slow too.
  const pause = o.slowFirstAttemptOnly ? `[ "$RUNMESH_ATTEMPT" = 1 ] && sleep ${every}` : `sleep ${every}`;
  return (
    `echo "$RUNMESH_JOB_ID $RUNMESH_ATTEMPT start" >> ${ledger}; ` +
    `for i in $(seq 1 ${lines}); do echo "line $i"; ${pause}; done; ` +
    `echo "$RUNMESH_JOB_ID $RUNMESH_ATTEMPT end" >> ${ledger}`
  );
}

/** What a job's log must be for `ledgerScript(…, lines)`. */
export const expectedLog = (lines: number): string => Array.from({ length: lines }, (_, i) => `line ${i + 1}\n`).join('');

/** The figures of one run, for the closing table. */
export interface History {
  jobs: number;
  /** Jobs that did not SUCCEED. */
  lost: number;
  /** Jobs whose job process ran to its end more than once. */
  duplicates: number;
  /** Jobs whose readable log differs from what they printed. */
  lostLogs: number;
  /** Jobs with more than one attempt (retried, re-queued). */
  retried: number;
  /** Every rule broken, described; empty when the run is sound. */
  violations: string[];
}

/** Reads every job through `clients` until terminal and checks the rules above. */
export async function checkHistory(
  clients: TestClient[],
  ids: string[],
  o: { ledger: string; lines: number; timeoutMs: number },
): Promise<History> {
  const done = await waitAllDone(clients, ids, o.timeoutMs);
  const runs = ledgerRuns(o.ledger);
  const violations: string[] = [];
  let lost = 0;
  let duplicates = 0;
  let lostLogs = 0;
  let retried = 0;
  for (const id of ids) {
    const job = done.get(id)!;
    const why = (rule: string): void => void violations.push(`${rule}: ${describeJob(job)}`);
    if (job.state !== JobState.JOB_STATE_SUCCEEDED) {
      lost++;
      why('did not succeed');
    }
    if (job.attempts.length > 1) retried++;
    if (overlappingAttempts(job).length > 0) why('two live attempts');
    if (!endsAtTerminal(job)) why('a write after the terminal state');
    if (!attemptsInOrder(job)) why('an entry of an attempt after a later one was assigned (a fenced write accepted)');
    const ended = runs.get(id) ?? [];
    if (ended.length > 1) {
      duplicates++;
      // Only the last run may be the recorded success: every earlier one must be an attempt recorded as lost.
      const earlier = ended.slice(0, -1);
      if (!earlier.every((n) => recordedLost(job, n))) why(`ran to its end ${ended.length} times (attempts ${ended.join(', ')})`);
    }
    if (job.state === JobState.JOB_STATE_SUCCEEDED) {
      const log = await readLog(clients, id);
      if (log !== expectedLog(o.lines)) {
        lostLogs++;
        why(`log differs from what the job printed (${log === undefined ? 'unreadable' : `${log.length} bytes`})`);
      }
    }
  }
  return { jobs: ids.length, lost, duplicates, lostLogs, retried, violations };
}

/** Per job, the attempts whose process ran to its end on some host, in order. */
function ledgerRuns(ledger: string): Map<string, number[]> {
  const runs = new Map<string, number[]>();
  let text = '';
  try {
    text = readFileSync(ledger, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  for (const line of text.split('\n')) {
    const [id, attempt, what] = line.split(' ');
    if (!id || what !== 'end') continue;
    runs.set(id, [...(runs.get(id) ?? []), Number(attempt)]);
  }
  return runs;
}

/** True when attempt `n` of `job` is recorded as one that did not complete: lost with its agent, or never delivered. */
function recordedLost(job: Job, n: number): boolean {
  const a = job.attempts.find((x) => x.number === n);
  return (
    a !== undefined &&
    a.state !== JobState.JOB_STATE_SUCCEEDED &&
    [
      FailureCategory.FAILURE_CATEGORY_AGENT_LOST,
      FailureCategory.FAILURE_CATEGORY_NOT_DELIVERED,
      FailureCategory.FAILURE_CATEGORY_PREEMPTED,
    ].includes(a.failure)
  );
}

/** Timeline entries never go back to an earlier attempt. */
function attemptsInOrder(job: Job): boolean {
  let highest = 0;
  for (const t of job.timeline) {
    if (t.attempt !== 0 && t.attempt < highest) return false;
    highest = Math.max(highest, t.attempt);
  }
  return true;
}

async function readLog(clients: TestClient[], id: string): Promise<string | undefined> {
  for (const c of clients) {
    const log = await c.logs(id).catch(() => undefined);
    if (log) return log.stdout;
  }
  return undefined;
}

/** Where the scenarios' figures go; `npm run chaos` prints them as a table. */
export const FIGURES_FILE = process.env.RUNMESH_CHAOS_FIGURES ?? '';

/** A scenario's figures: a History, or part of one for a scenario that does not read logs or ledgers ('-' in the table). */
export type Figures = Pick<History, 'jobs' | 'lost' | 'retried'> & Partial<Pick<History, 'duplicates' | 'lostLogs'>>;

/** Records a scenario's figures (time to re-queue in ms, or undefined when nothing was re-queued). */
export function recordFigures(scenario: string, h: Figures, requeueMs?: number): void {
  const line = { scenario, requeueMs, jobs: h.jobs, duplicates: h.duplicates, lost: h.lost, lostLogs: h.lostLogs, retried: h.retried };
  console.log(`chaos: ${JSON.stringify(line)}`);
  if (FIGURES_FILE) appendFileSync(FIGURES_FILE, `${JSON.stringify(line)}\n`);
}
