/** What a finished job means for the `runmesh` process that waited on it. */
import { FailureCategory, type Job, JobState } from '../proto/gen/runmesh/v1/job.js';
import { JobOutcomeError } from './errors.js';
import { failureName, stateName } from './format.js';

const TERMINAL = new Set<JobState>([
  JobState.JOB_STATE_SUCCEEDED,
  JobState.JOB_STATE_FAILED,
  JobState.JOB_STATE_CANCELLED,
  JobState.JOB_STATE_TIMED_OUT,
  JobState.JOB_STATE_DEAD,
  JobState.JOB_STATE_SKIPPED,
]);

/** True once the job will not run again. */
export function isTerminal(state: JobState): boolean {
  return TERMINAL.has(state);
}

/**
 * Exit codes of `submit --wait` for a job that did not run to an exit code of
 * its own, after the shell's and timeout(1)'s conventions. A job that exits
 * with one of these numbers itself is indistinguishable from them, as under
 * timeout(1).
 */
export const EXIT = {
  /** The job ran past its --timeout (as timeout(1)). */
  timedOut: 124,
  /** The mesh could not run it to an end: could not start, agent lost, disk full, preempted, never delivered; or skipped (a job it needs failed). */
  couldNotRun: 125,
  /** The job cannot be run as given: its program is missing or not executable, or no agent would trust its signature (as sh's 126). */
  notRunnable: 126,
  /** The job was cancelled (as a shell reports a process ended by SIGINT). */
  cancelled: 130,
  /** The kernel killed it for going over its --memory (as a shell reports SIGKILL). */
  outOfMemory: 137,
} as const;

/**
 * Throws {@link JobOutcomeError} unless the job succeeded. A job that ran to
 * an exit code passes that code on (quietly: its own stderr said why); any
 * other end exits with its {@link EXIT} code and one line
 * `job <id> <state> (<reason>)`.
 */
export function settle(job: Job): void {
  if (job.state === JobState.JOB_STATE_SUCCEEDED) return;
  if (job.state === JobState.JOB_STATE_FAILED && job.failure === FailureCategory.FAILURE_CATEGORY_EXIT_CODE) {
    throw new JobOutcomeError(job.id, processExitCode(job.exitCode), undefined);
  }
  throw new JobOutcomeError(job.id, exitCodeOf(job), `job ${job.id} ${describeEnd(job)}`);
}

function exitCodeOf(job: Job): number {
  if (job.state === JobState.JOB_STATE_CANCELLED) return EXIT.cancelled;
  if (job.state === JobState.JOB_STATE_TIMED_OUT) return EXIT.timedOut;
  switch (failureOf(job)) {
    case FailureCategory.FAILURE_CATEGORY_CANCELLED:
      return EXIT.cancelled;
    case FailureCategory.FAILURE_CATEGORY_TIMEOUT:
      return EXIT.timedOut;
    case FailureCategory.FAILURE_CATEGORY_NOT_RUNNABLE:
    case FailureCategory.FAILURE_CATEGORY_UNTRUSTED:
      return EXIT.notRunnable;
    case FailureCategory.FAILURE_CATEGORY_OUT_OF_MEMORY:
      return EXIT.outOfMemory;
    default:
      return EXIT.couldNotRun;
  }
}

// POSIX keeps only the low 8 bits of an exit status; 0 or out-of-range codes must still read as failure.
function processExitCode(code: number): number {
  return code >= 1 && code <= 255 ? code : 1;
}

function failureOf(job: Job): FailureCategory {
  return job.failure || job.attempts.at(-1)?.failure || FailureCategory.FAILURE_CATEGORY_UNSPECIFIED;
}

/** The failure categories that only repeat a state's name. */
const SAME_AS_STATE: Partial<Record<JobState, FailureCategory>> = {
  [JobState.JOB_STATE_CANCELLED]: FailureCategory.FAILURE_CATEGORY_CANCELLED,
  [JobState.JOB_STATE_TIMED_OUT]: FailureCategory.FAILURE_CATEGORY_TIMEOUT,
};

/** `cancelled (by alice)`, `dead (agent lost: heartbeat missed)`: the state, and what the record adds to it, said once. */
export function describeEnd(job: Job): string {
  const state = stateName(job.state);
  const reason = reasonOf(job);
  return reason ? `${state} (${reason})` : state;
}

/**
 * The best explanation the job record holds: failure category and the last
 * attempt's message, without words the state already says (an agent reports
 * a cancelled attempt as "cancelled: <reason>"). Empty when nothing is left.
 */
export function reasonOf(job: Job): string {
  const failure = failureOf(job);
  const last = job.attempts.at(-1);
  const repeats = failure === FailureCategory.FAILURE_CATEGORY_UNSPECIFIED || SAME_AS_STATE[job.state] === failure;
  const category = repeats ? '' : failureName(failure);
  const said = [stateName(job.state), failureName(failure), category].filter(Boolean);
  const message = withoutPrefixes(last?.message || job.timeline.at(-1)?.reason || '', said);
  if (category && message) return `${category}: ${message}`;
  return category || message;
}

/** Drops leading `word:` (or a message that is just `word`) for words already said. */
function withoutPrefixes(message: string, words: readonly string[]): string {
  let rest = message.trim();
  for (let changed = true; changed;) {
    changed = false;
    for (const word of words) {
      const lower = rest.toLowerCase();
      if (lower === word) return '';
      if (lower.startsWith(`${word}:`)) {
        rest = rest.slice(word.length + 1).trim();
        changed = true;
      }
    }
  }
  return rest;
}
