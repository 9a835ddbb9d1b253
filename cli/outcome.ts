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
]);

/** True once the job will not run again. */
export function isTerminal(state: JobState): boolean {
  return TERMINAL.has(state);
}

/**
 * Throws {@link JobOutcomeError} unless the job succeeded. A job that ran to
 * an exit code passes that code on (quietly: its own stderr said why); any
 * other end (cancelled, timed out, dead, agent lost) exits 1 with one line
 * `job <id> <state> (<reason>)`.
 */
export function settle(job: Job): void {
  if (job.state === JobState.JOB_STATE_SUCCEEDED) return;
  if (job.state === JobState.JOB_STATE_FAILED && job.failure === FailureCategory.FAILURE_CATEGORY_EXIT_CODE) {
    throw new JobOutcomeError(job.id, processExitCode(job.exitCode), undefined);
  }
  throw new JobOutcomeError(job.id, 1, `job ${job.id} ${stateName(job.state)} (${reasonOf(job)})`);
}

// POSIX keeps only the low 8 bits of an exit status; 0 or out-of-range codes must still read as failure.
function processExitCode(code: number): number {
  return code >= 1 && code <= 255 ? code : 1;
}

/** The best explanation the job record holds: failure category and the last attempt's message. */
export function reasonOf(job: Job): string {
  const last = job.attempts.at(-1);
  const failure = job.failure || last?.failure || FailureCategory.FAILURE_CATEGORY_UNSPECIFIED;
  const message = last?.message || job.timeline.at(-1)?.reason || '';
  const category = failure === FailureCategory.FAILURE_CATEGORY_UNSPECIFIED ? '' : failureName(failure);
  if (category && message) return `${category}: ${message}`;
  return category || message || 'no reason recorded';
}
