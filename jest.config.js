/** @type {import('jest').Config} */
module.exports = {
  rootDir: '.',
  testMatch: ['<rootDir>/test/**/*.spec.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json', diagnostics: false }] },
  moduleNameMapper: { '^nestjs-distributed-scheduler$': '<rootDir>/lib/index.ts' },
  testEnvironment: 'node',
  testTimeout: 60_000,
  // Multi-process and fault tests start their own processes and servers: one file at a time.
  maxWorkers: 1,
};
