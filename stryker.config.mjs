// Mutation testing (`npm run mutation`): not part of CI, it runs for a long time. Each mutant of
// lib/scheduling, lib/coordination and lib/execution is run against the tests of
// jest.mutation.config.js; a surviving mutant is a change of behaviour no test notices.
// Narrow a run with `npx stryker run --mutate 'lib/scheduling/schedule.ts'` and MUTATION_TESTS.
// The Lua scripts are not mutated (Stryker mutates JavaScript/TypeScript only): their mutants
// are planted by hand, see README "Tests".
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  packageManager: 'npm',
  testRunner: 'jest',
  jest: { projectType: 'custom', configFile: 'jest.mutation.config.js', enableFindRelatedTests: false },
  mutate: ['lib/scheduling/**/*.ts', 'lib/coordination/**/*.ts', 'lib/execution/**/*.ts', '!lib/**/*.interface.ts', '!lib/execution/migrations/**'],
  coverageAnalysis: 'perTest',
  // The tests talk to one shared Redis and database server, and the machine is small.
  concurrency: 2,
  timeoutMS: 60_000,
  reporters: ['clear-text', 'progress', 'html'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  tempDirName: '.stryker-tmp',
  cleanTempDir: true,
};
