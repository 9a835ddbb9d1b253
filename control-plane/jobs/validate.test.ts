/** Job spec checks that have no test of their own area: artifact globs (JobSpec.artifacts). */
import { describe, expect, it } from 'vitest';
import { JobSpec } from '../../proto/gen/runmesh/v1/job.js';
import { ValidationError } from './errors.js';
import { validateSpec } from './validate.js';

const refusal = (artifacts: string[]): string => {
  try {
    validateSpec(JobSpec.fromPartial({ argv: ['true'], artifacts }));
    return 'accepted';
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    return `${err.field}: ${err.message}`;
  }
};

describe('artifact globs', () => {
  it('takes relative globs with * and ** and keeps them as given', () => {
    expect(validateSpec(JobSpec.fromPartial({ argv: ['true'], artifacts: ['dist/**', 'report.xml', 'out/*.log'] })).artifacts).toEqual([
      'dist/**',
      'report.xml',
      'out/*.log',
    ]);
  });

  it('refuses, naming spec.artifacts[i], a glob that leaves the workspace or is not a plain path', () => {
    expect(refusal(['a', '../etc/*'])).toMatch(/^spec\.artifacts\[1\]: .*relative to the workspace, without \.\./);
    expect(refusal(['/etc/shadow'])).toMatch(/^spec\.artifacts\[0\]: .*relative/);
    expect(refusal(['dist//x'])).toMatch(/^spec\.artifacts\[0\]: .*not a plain relative path/);
    expect(refusal(['./dist'])).toMatch(/^spec\.artifacts\[0\]: .*not a plain relative path/);
    expect(refusal(['dist/'])).toMatch(/^spec\.artifacts\[0\]: .*not a plain relative path/);
    expect(refusal([''])).toMatch(/^spec\.artifacts\[0\]: .*1-256 characters/);
    expect(refusal(['a'.repeat(257)])).toMatch(/^spec\.artifacts\[0\]: .*1-256 characters/);
    expect(refusal(['a\0b'])).toMatch(/^spec\.artifacts\[0\]: .*NUL/);
    expect(refusal(['dist\\*.js'])).toMatch(/^spec\.artifacts\[0\]: .*backslash/);
    expect(refusal(['x', 'x'])).toMatch(/^spec\.artifacts\[1\]: .*given twice/);
    expect(refusal(Array.from({ length: 33 }, (_, i) => `f${i}`))).toMatch(/^spec\.artifacts: .*too many \(33, limit 32\)/);
    expect(refusal(Array.from({ length: 32 }, (_, i) => `f${i}`))).toBe('accepted');
  });
});
