/** @type {import('jest').Config} */
module.exports = {
  rootDir: '.',
  testMatch: ['<rootDir>/test/**/*.spec.ts'],
  transform: {
    // Transpile only, file by file: type errors are caught by `npm run typecheck` (part of `npm test`).
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.jest.json' }],
    // NestJS 12 is published as ES modules only: see the transformer for why and how.
    '^.+\\.js$': '<rootDir>/test/support/esm-to-cjs.transformer.js',
  },
  // Transform only the ES-module packages the tests load; every other package is CommonJS already.
  transformIgnorePatterns: ['/node_modules/(?!(@nestjs|file-type|uint8array-extras|strtok3|token-types|@tokenizer|peek-readable)/)'],
  moduleNameMapper: {
    '^nestjs-distributed-scheduler$': '<rootDir>/lib/index.ts',
    '^nestjs-distributed-scheduler/records$': '<rootDir>/lib/records.ts',
  },
  testEnvironment: 'node',
  // Every run deletes the shared Redis keys of its uniquePrefix() prefixes, and fails if they come back.
  globalSetup: '<rootDir>/test/support/redis-keys.global-setup.ts',
  globalTeardown: '<rootDir>/test/support/redis-keys.global-teardown.ts',
  testTimeout: 60_000,
  // Multi-process and fault tests start their own processes and servers: one file at a time.
  maxWorkers: 1,
};
