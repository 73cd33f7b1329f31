// The Jest configuration of `npm run mutation` (StrykerJS): the main one, on the tests that
// exercise lib/scheduling, lib/coordination and lib/execution quickly. MUTATION_TESTS narrows
// them further (a glob under test/), e.g. MUTATION_TESTS='unit/**' for a run of minutes.
const base = require('./jest.config');

const tests = process.env.MUTATION_TESTS
  ? [`<rootDir>/test/${process.env.MUTATION_TESTS}.spec.ts`]
  : [
      '<rootDir>/test/unit/**/*.spec.ts',
      '<rootDir>/test/coordinator.contract.spec.ts',
      '<rootDir>/test/fencing.contract.spec.ts',
      '<rootDir>/test/controls.spec.ts',
      '<rootDir>/test/runtime-controls.spec.ts',
      '<rootDir>/test/module.spec.ts',
      '<rootDir>/test/records-coordinators.spec.ts',
    ];

module.exports = { ...base, testMatch: tests };
