import { defineConfig } from 'vitest/config';

/** The mesh suite (three peers, agents and etcd per test, hundreds of jobs) loads both cores by itself. */
const MESH = ['test/mesh.test.ts'];

export default defineConfig({
  test: {
    exclude: ['node_modules/**', 'dist/**'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Process-heavy suites share 2 cores; keep parallelism modest so timings stay honest.
    maxWorkers: 2,
    // On a failure, the output of the processes the test started.
    setupFiles: ['test/support/failure-output.ts'],
    // The mesh suite runs on its own first, then the rest two files at a time: beside it, a suite that
    // starts agents saw Node take 13 s to boot one, and its bounded waits ran out.
    projects: [
      { extends: true, test: { name: 'mesh', include: MESH, sequence: { groupOrder: 0 } } },
      {
        extends: true,
        test: { name: 'rest', include: ['**/*.test.ts'], exclude: ['node_modules/**', 'dist/**', ...MESH], sequence: { groupOrder: 1 } },
      },
    ],
  },
});
