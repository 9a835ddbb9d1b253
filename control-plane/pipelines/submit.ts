/** What submitting a batch as a pipeline does to its drafted records. */
import type { JobSpec } from '../../proto/gen/runmesh/v1/job.js';
import { hold } from '../jobs/needs.js';
import type { JobRecord } from '../jobs/record.js';
import { planPipeline } from './graph.js';
import { newPipelineId } from './ids.js';

/** The batch's plan (per job, the indices it needs) when it is a pipeline: asked for, or a job names needs. Throws ValidationError. */
export function pipelinePlan(specs: readonly JobSpec[], asked: boolean): number[][] | undefined {
  return asked || specs.some((s) => s.needs.length > 0) ? planPipeline(specs) : undefined;
}

/** Gives the drafted records (in the batch's order) one new pipeline id, and holds each job that needs others. Returns the id. */
export function makePipeline(records: readonly JobRecord[], plan: readonly (readonly number[])[], now: Date): string {
  const id = newPipelineId(now.getTime());
  records.forEach((r, i) => {
    r.job.pipelineId = id;
    const needs = (plan[i] ?? []).map((k) => records[k]!);
    if (needs.length > 0)
      hold(
        r,
        needs.map((n) => n.job.id),
        needs.map((n) => n.job.spec.name),
      );
  });
  return id;
}
