/** Pipeline ids: `p_` and the same time-sortable tail as a job id (jobs/ids.ts), made when the batch is submitted. */
import { newJobId } from '../jobs/ids.js';

const PIPELINE_ID = /^p_[0-9a-z]{13}[0-9a-f]{8}$/;

export function newPipelineId(now: number): string {
  return `p_${newJobId(now).slice(2)}`;
}

/** True for a string `newPipelineId` could have made. */
export const isPipelineId = (id: string): boolean => PIPELINE_ID.test(id);
