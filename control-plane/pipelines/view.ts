/** A pipeline as PipelineService shows it: its jobs with their needs and states, and a state for the whole. */
import { JobState } from '../../proto/gen/runmesh/v1/job.js';
import { PipelineState, type Pipeline, type PipelineJob } from '../../proto/gen/runmesh/v1/pipeline.js';
import { lets } from '../jobs/needs.js';
import type { JobRecord } from '../jobs/record.js';
import { isTerminal } from '../jobs/state.js';

/** `records`: the pipeline's stored jobs, in submission order (at least one). */
export function pipelineView(id: string, records: readonly JobRecord[]): Pipeline {
  const jobs = records.map(jobView);
  return { id, tenant: records[0]?.job.spec.tenant ?? '', state: stateOf(jobs), jobs, createdAt: records[0]?.job.createdAt };
}

function jobView(r: JobRecord): PipelineJob {
  const j = r.job;
  return {
    id: j.id,
    name: j.spec.name,
    needs: [...j.spec.needs],
    allowFailure: j.spec.allowFailure,
    state: j.state,
    attempt: j.attempt,
    exitCode: j.exitCode,
    failure: j.failure,
    reason: j.waitingReason || j.timeline.at(-1)?.reason || '',
    startedAt: j.attempts[0]?.startedAt,
    finishedAt: isTerminal(j.state) ? j.updatedAt : undefined,
  };
}

function stateOf(jobs: readonly PipelineJob[]): PipelineState {
  if (jobs.some((j) => !isTerminal(j.state))) return PipelineState.PIPELINE_STATE_RUNNING;
  if (jobs.some((j) => j.state === JobState.JOB_STATE_CANCELLED)) return PipelineState.PIPELINE_STATE_CANCELLED;
  if (jobs.every((j) => lets(j.state, j.allowFailure))) return PipelineState.PIPELINE_STATE_SUCCEEDED;
  return PipelineState.PIPELINE_STATE_FAILED;
}
