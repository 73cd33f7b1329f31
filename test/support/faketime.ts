import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The environment that runs a child process on a skewed clock with Debian's libfaketime
 * (package `faketime`; `.ci/run` installs it): `offset` as libfaketime writes it, e.g. `+5s`,
 * `-2s`. Node's `Date.now()` and its timers follow it; Redis's clock does not.
 */
export function skewedClockEnv(offset: string): Record<string, string> {
  return { LD_PRELOAD: libfaketime(), FAKETIME: offset, FAKETIME_DONT_RESET: '1' };
}

function libfaketime(): string {
  const candidates = ['/usr/lib/faketime', ...readdirSafe('/usr/lib').map((dir) => join('/usr/lib', dir, 'faketime'))].map((dir) =>
    join(dir, 'libfaketime.so.1'),
  );
  const found = candidates.find((path) => existsSync(path));
  if (!found) throw new Error('libfaketime is not installed: the clock-skew tests need it (apt-get install -y faketime).');
  return found;
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
