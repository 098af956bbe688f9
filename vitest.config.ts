import { defineConfig } from 'vitest/config';

// Files that start clusters of real processes: they run one at a time, after the unit,
// property and simulation files, so that a 2-core machine is not asked to run several
// clusters at once (their timeouts would then measure the machine, not dsync).
const PROCESS_TESTS = [
  'test/cluster/**/*.test.ts',
  'test/lock/lock-{api,sdk,cli,faults,requests,crowd,handoff,restart,reads}.test.ts',
  'test/cache/cache-*.test.ts',
  'test/queue/queue-*.test.ts',
  'test/docker/**/*.test.ts',
  'test/discovery/pods-*.test.ts',
  'test/k6/k6-smoke.test.ts',
  'test/ui/**/*.test.ts',
];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: ['default', './test/support/summary-reporter.ts'],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: PROCESS_TESTS,
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'process',
          include: PROCESS_TESTS,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
