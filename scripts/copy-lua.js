// tsc does not copy non-TypeScript files: put the Lua scripts next to the compiled coordinator.
const { cpSync } = require('node:fs');
const { join } = require('node:path');

const from = join(__dirname, '..', 'lib', 'coordination', 'redis', 'scripts');
const to = join(__dirname, '..', 'dist', 'coordination', 'redis', 'scripts');
cpSync(from, to, { recursive: true });
