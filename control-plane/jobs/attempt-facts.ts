/**
 * What a job token's check needs of its job (auth/job-tokens.ts AttemptFacts),
 * read from the store itself: the attempt's end must stop its token on every
 * peer at once, not once a watched copy catches up.
 */
import type { JobRepo } from './repo.js';
import { isActive } from './state.js';

export interface CurrentAttempt {
  tenant: string;
  attempt: number;
  active: boolean;
  assignedAt: number;
  timeoutSeconds: number;
  cancelGraceSeconds: number;
}

/** The job's current attempt as stored, or undefined for no such job. Rejects when the store cannot answer. */
export async function currentAttemptOf(repo: JobRepo, jobId: string): Promise<CurrentAttempt | undefined> {
  const v = await repo.get(jobId);
  if (!v) return undefined;
  const { job } = v.record;
  const a = job.attempts.find((x) => x.number === job.attempt);
  return {
    tenant: job.spec.tenant,
    attempt: job.attempt,
    active: isActive(job.state) && a !== undefined,
    assignedAt: a?.assignedAt ? Date.parse(a.assignedAt) : 0,
    timeoutSeconds: job.spec.timeoutSeconds,
    cancelGraceSeconds: job.spec.cancelGraceSeconds,
  };
}
