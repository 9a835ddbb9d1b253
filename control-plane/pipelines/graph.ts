/**
 * A SubmitBatch as a pipeline: every job named (once), one tenant, each need
 * the name of another job of the batch, and no cycle. Errors name the field
 * (`specs[2].needs[0]`) and, for a cycle, the cycle (`a -> b -> a`).
 */
import { ValidationError } from '../jobs/errors.js';

/** Jobs in one pipeline, at most. */
export const PIPELINE_LIMIT = 1000;

/** What the check reads of each spec. */
export interface PipelineSpec {
  name: string;
  tenant: string;
  needs: readonly string[];
}

/** Checks the batch; returns, per job, the indices of the jobs it needs (in the order named). */
export function planPipeline(specs: readonly PipelineSpec[]): number[][] {
  if (specs.length > PIPELINE_LIMIT)
    throw new ValidationError('specs', `${specs.length} jobs exceed the pipeline limit of ${PIPELINE_LIMIT}`);
  const byName = new Map<string, number>();
  specs.forEach((s, i) => {
    if (s.name === '') throw new ValidationError(`specs[${i}].name`, "missing: a pipeline's jobs each need a name (needs name them)");
    const first = byName.get(s.name);
    if (first !== undefined) throw new ValidationError(`specs[${i}].name`, `"${s.name}" is also the name of specs[${first}]`);
    byName.set(s.name, i);
    const tenant = specs[0]!.tenant;
    if (s.tenant !== tenant)
      throw new ValidationError(
        `specs[${i}].tenant`,
        `a pipeline's jobs are all in one tenant: "${s.tenant}", not "${tenant}" as specs[0]`,
      );
  });
  const needs = specs.map((s, i) => resolveNeeds(s, i, byName));
  const cycle = findCycle(needs);
  if (cycle) {
    const names = cycle.map((i) => specs[i]!.name);
    throw new ValidationError(`specs[${cycle[0]}].needs`, `needs cycle: ${names.join(' -> ')}`);
  }
  return needs;
}

function resolveNeeds(spec: PipelineSpec, i: number, byName: ReadonlyMap<string, number>): number[] {
  const seen = new Set<string>();
  return spec.needs.map((name, j) => {
    const field = `specs[${i}].needs[${j}]`;
    const k = byName.get(name);
    if (k === undefined) throw new ValidationError(field, `no job named "${name.slice(0, 256)}" in this batch`);
    if (k === i) throw new ValidationError(field, `"${name}" is this job itself: a job cannot need itself`);
    if (seen.has(name)) throw new ValidationError(field, `"${name}" is named twice`);
    seen.add(name);
    return k;
  });
}

/** A cycle in the graph (job → the jobs it needs), as the path that closes it (`[a, b, a]`), if there is one. */
export function findCycle(needs: readonly (readonly number[])[]): number[] | undefined {
  const state = new Uint8Array(needs.length); // 0 unseen, 1 on the current path, 2 done
  for (let root = 0; root < needs.length; root++) {
    if (state[root] !== 0) continue;
    // Depth-first without recursion: a chain of 1000 jobs is 1000 frames.
    const path: number[] = [root];
    const next: number[] = [0];
    state[root] = 1;
    while (path.length > 0) {
      const top = path.length - 1;
      const at = path[top]!;
      const k = needs[at]![next[top]!++];
      if (k === undefined) {
        state[at] = 2;
        path.pop();
        next.pop();
      } else if (state[k] === 1) return [...path.slice(path.indexOf(k)), k];
      else if (state[k] === 0) {
        state[k] = 1;
        path.push(k);
        next.push(0);
      }
    }
  }
  return undefined;
}
