/**
 * JobService.Retry: the dead-letter queue's re-drive. A job that ended
 * without succeeding is queued again with a new attempt sequence, its history
 * kept (lifecycle.ts `redrive`). Tenant-scoped like Cancel: a job of another
 * tenant is NOT_FOUND. Bulk re-drives are the client's (runmesh jobs retry
 * --filter): one Retry per job, each authorized and audited on its own.
 */
import { status as Status } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { JobState, type RetryRequest, type RetryResponse } from '../../proto/gen/runmesh/v1/job.js';
import { canSee, canSeeJob, type Gate, type Principal } from '../auth/index.js';
import { redrive, REDRIVABLE } from '../jobs/lifecycle.js';
import { dependentsOf, unskip } from '../jobs/needs.js';
import { PIPELINE_LIMIT } from '../pipelines/graph.js';
import type { JobRecord } from '../jobs/record.js';
import type { JobRepo } from '../jobs/repo.js';
import { stateName } from '../jobs/state.js';
import type { JobWriter } from '../jobs/writer.js';
import { ApiError, checkJobId, invalid, jobNotFound, type Retention } from './status.js';

export interface RetryDeps {
  gate: Gate;
  repo: JobRepo;
  writer: JobWriter;
  logger: Logger;
  retention: Retention;
}

const MAX_REASON_CHARS = 256;

function notRedrivable(r: JobRecord): ApiError {
  return new ApiError(
    Status.FAILED_PRECONDITION,
    `job ${r.job.id} is ${stateName(r.job.state)}: only a failed, dead, timed-out or cancelled job can be retried`,
  );
}

/**
 * A retried pipeline job's dependents that were skipped because of it
 * (directly or through others) are held again, so the pipeline goes on if
 * the retry succeeds; each write is its own, conditional on the job still
 * being SKIPPED. A dependent skipped for another need is decided again by
 * the leader and skipped again. One that could not be written is logged:
 * the retry itself stands.
 */
async function reviveDependents(d: RetryDeps, retried: JobRecord, who: Principal): Promise<void> {
  const ids = await d.repo.pipelineJobIds(retried.job.pipelineId, PIPELINE_LIMIT);
  const records = (await Promise.all(ids.map((id) => d.repo.get(id)))).flatMap((v) => (v ? [v.record] : []));
  const name = retried.job.spec.name || retried.job.id;
  const now = new Date();
  for (const id of dependentsOf(retried.job.id, records)) {
    if (records.find((r) => r.job.id === id)?.job.state !== JobState.JOB_STATE_SKIPPED) continue;
    const held = await d.writer.write(id, (r) => unskip(r, `need ${name} retried by ${who.name || who.id}`, now));
    if (held) d.logger.info({ job_id: id, need: retried.job.id }, 'skipped pipeline job held again: a need was retried');
    else d.logger.warn({ job_id: id, need: retried.job.id }, 'a skipped dependent of a retried job could not be held again');
  }
}

export async function retryJob(d: RetryDeps, req: RetryRequest, who: Principal): Promise<RetryResponse> {
  const id = checkJobId(req.id);
  if (req.reason.length > MAX_REASON_CHARS) throw invalid('reason', `longer than ${MAX_REASON_CHARS} characters`);
  const before = (await d.repo.get(id))?.record;
  if (!before || !canSeeJob(who, before.job.spec.tenant, id)) throw jobNotFound(id, d.retention);
  if (!REDRIVABLE.has(before.job.state)) throw notRedrivable(before);
  // A retry runs the job again: it counts against its tenant's submit rate.
  d.gate.spendTenant(before.job.spec.tenant, 1);
  const reason = `retried by ${who.name || who.id}${req.reason ? `: ${req.reason}` : ''}`;
  const stored = await d.writer.write(id, (r) => canSee(who, r.job.spec.tenant) && redrive(r, reason, new Date()));
  if (stored) {
    d.logger.info({ job_id: id, redrives: stored.job.redrives, token_id: who.id }, 'job retried');
    if (stored.job.pipelineId) await reviveDependents(d, stored, who);
    return { job: stored.job };
  }
  // Nothing written: another call moved it on first, or the write failed (a store error is never "no change").
  const after = (await d.repo.get(id))?.record;
  if (!after) throw jobNotFound(id, d.retention);
  if (REDRIVABLE.has(after.job.state)) throw new ApiError(Status.UNAVAILABLE, `job ${id}: the retry could not be stored; try again`);
  throw notRedrivable(after);
}
