import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**'],
    pool: 'forks',
    // On a failure, the output of the processes the test started.
    setupFiles: ['test/support/failure-output.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Process-heavy suites share 2 cores; keep parallelism modest so timings stay honest.
    maxWorkers: 2,
  },
});
