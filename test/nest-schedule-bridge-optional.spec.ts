import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

/** @nestjs/schedule is an optional peer: apps without it load, compile against and run the library. */
describe('an app without @nestjs/schedule', () => {
  const dist = join(__dirname, '..', 'dist');

  it('loads the library and runs its jobs when @nestjs/schedule is not installed', async () => {
    // The fixture hides the package from require and loads the built package (`npm test` builds first).
    const { stdout } = await promisify(execFile)(process.execPath, [join(__dirname, 'fixtures', 'without-packages.main.js'), '@nestjs/schedule'], { timeout: 30_000 });
    expect(stdout.trim()).toBe('ran tick executionId=null');
  });

  it('finds no @nestjs/schedule type or import in the built declarations and code', () => {
    const files = (readdirSync(dist, { recursive: true }) as string[]).filter((file) => /\.(d\.ts|js)$/.test(file));
    expect(files).toContain('index.d.ts');
    const mentioning = files.filter((file) => /['"]@nestjs\/schedule['"]/.test(readFileSync(join(dist, file), 'utf8')));
    expect(mentioning).toEqual([]);
  });
});
