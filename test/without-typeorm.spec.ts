import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

describe('an app without TypeORM', () => {
  it('loads the library and runs its jobs when typeorm and @nestjs/typeorm are not installed', async () => {
    // The fixture hides both packages from require and loads the built package (`npm test` builds first).
    const { stdout } = await promisify(execFile)(process.execPath, [join(__dirname, 'fixtures', 'without-packages.main.js'), 'typeorm', '@nestjs/typeorm'], { timeout: 30_000 });
    expect(stdout.trim()).toBe('ran tick executionId=null');
  });
});
