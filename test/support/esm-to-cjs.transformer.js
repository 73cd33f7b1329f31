// NestJS 12 ships ES modules only. Jest's module system (without --experimental-vm-modules) loads
// CommonJS, so the ES modules of node_modules that the tests reach are turned into CommonJS here,
// the way `tsc --module commonjs` would: `import()` becomes a `require`, and `import.meta.url`
// (used by @nestjs/common and @nestjs/typeorm to build a `require`) becomes this file's URL.
const { createHash } = require('node:crypto');
const ts = require('typescript');

const IMPORT_META_URL = /\bimport\.meta\.url\b/g;
// An ES module that builds its own `require`: CommonJS has one already, resolving from the same file.
const OWN_REQUIRE = /^const require = (?:\w+\.)?createRequire\(import\.meta\.url\);?$/m;

module.exports = {
  process(source, filename) {
    const withUrl = source.replace(OWN_REQUIRE, '').replace(IMPORT_META_URL, 'require("node:url").pathToFileURL(__filename).href');
    const { outputText } = ts.transpileModule(withUrl, {
      fileName: filename,
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, allowJs: true, esModuleInterop: true, sourceMap: false },
    });
    return { code: outputText };
  },
  getCacheKey(source, filename) {
    return createHash('sha1').update('esm-to-cjs-2').update(filename).update(source).digest('hex');
  },
};
