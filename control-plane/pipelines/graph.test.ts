import { describe, expect, it } from 'vitest';
import { findCycle, PIPELINE_LIMIT, planPipeline, type PipelineSpec } from './graph.js';

const job = (name: string, needs: string[] = [], tenant = 't'): PipelineSpec => ({ name, needs, tenant });
const refusal = (specs: PipelineSpec[]): string => {
  try {
    planPipeline(specs);
  } catch (err) {
    return (err as Error).message;
  }
  return 'accepted';
};

describe('a batch as a pipeline', () => {
  it('resolves needs to indices: fan-out and fan-in', () => {
    const plan = planPipeline([job('build'), job('unit', ['build']), job('lint', ['build']), job('deploy', ['unit', 'lint'])]);
    expect(plan).toEqual([[], [0], [0], [1, 2]]);
  });

  it('names a cycle, from the first job on it, around and back', () => {
    expect(refusal([job('a', ['b']), job('b', ['a'])])).toBe('specs[0].needs: needs cycle: a -> b -> a');
    expect(refusal([job('x'), job('a', ['c']), job('b', ['a']), job('c', ['b', 'x'])])).toBe(
      'specs[1].needs: needs cycle: a -> c -> b -> a',
    );
  });

  it('refuses a need that is not in the batch, the job itself, or named twice, naming specs[i].needs[j]', () => {
    expect(refusal([job('a'), job('b', ['a', 'nope'])])).toBe('specs[1].needs[1]: no job named "nope" in this batch');
    expect(refusal([job('a', ['a'])])).toBe('specs[0].needs[0]: "a" is this job itself: a job cannot need itself');
    expect(refusal([job('a'), job('b', ['a', 'a'])])).toBe('specs[1].needs[1]: "a" is named twice');
  });

  it('wants every job named once, and one tenant', () => {
    expect(refusal([job('a'), job('')])).toMatch(/^specs\[1\]\.name: missing/);
    expect(refusal([job('a'), job('a')])).toBe('specs[1].name: "a" is also the name of specs[0]');
    expect(refusal([job('a'), job('b', [], 'u')])).toMatch(/^specs\[1\]\.tenant: a pipeline's jobs are all in one tenant/);
  });

  it(`takes at most ${PIPELINE_LIMIT} jobs, and a chain that long without recursing`, () => {
    const chain = Array.from({ length: PIPELINE_LIMIT }, (_, i) => job(`j${i}`, i > 0 ? [`j${i - 1}`] : []));
    expect(planPipeline(chain).at(-1)).toEqual([PIPELINE_LIMIT - 2]);
    expect(refusal([...chain, job('one-more')])).toBe(`specs: ${PIPELINE_LIMIT + 1} jobs exceed the pipeline limit of ${PIPELINE_LIMIT}`);
    expect(findCycle([[1], [2], [0]])).toEqual([0, 1, 2, 0]);
    expect(findCycle([[], [0], [0, 1]])).toBeUndefined();
  });
});
