import Redis from 'ioredis';

/*
 * The keys tests leave on the shared Redis. Every prefix from `uniquePrefix()` carries the id of
 * its test run, so a run deletes exactly its own keys when it ends, whatever the test did, and
 * never those of a run going on beside it (other checkouts test against the same Redis).
 */

/** The SCAN pattern of every key of a run: keys are `{<prefix>}:…`, the prefix `test-<run id>-…`. */
export function runKeyPattern(runId: string): string {
  return `{test-${runId}-*`;
}

/** A client that gives up at once when Redis is not there, instead of retrying for ever. */
export function cleanupClient(url: string): Redis {
  return new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 2_000, retryStrategy: () => null, enableOfflineQueue: false });
}

/** Every key matching `pattern`, SCANned (never KEYS, which blocks a shared server). */
export async function scanKeys(redis: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return [...new Set(keys)];
}

/** Deletes every key of the run; returns how many there were. */
export async function removeKeysOfRun(redis: Redis, runId: string): Promise<number> {
  const keys = await scanKeys(redis, runKeyPattern(runId));
  for (let i = 0; i < keys.length; i += 500) await redis.unlink(...keys.slice(i, i + 500));
  return keys.length;
}

/**
 * Deletes the run's keys, then looks again a moment later: keys that came back mean a process of
 * the run (an app not closed, a replica not stopped) still writes to Redis after the run ended.
 * That fails the run, naming the prefixes, rather than leaving keys without a TTL behind.
 */
export async function cleanUpRun(redis: Redis, runId: string, settleMs = 300): Promise<number> {
  const removed = await removeKeysOfRun(redis, runId);
  await new Promise((resolve) => setTimeout(resolve, settleMs));
  const back = await scanKeys(redis, runKeyPattern(runId));
  if (back.length === 0) return removed;
  await removeKeysOfRun(redis, runId);
  const prefixes = [...new Set(back.map((key) => key.slice(1, key.indexOf('}'))))].sort();
  throw new Error(
    `Redis keys of this test run were written after its tests ended, so something they started still runs: ` +
      `${back.length} key(s) of prefix(es) ${prefixes.join(', ')} (e.g. ${back.slice(0, 3).join(', ')}). Close every app and stop every replica a test starts.`,
  );
}

/** A test key's prefix, and the pid of the process that made it: `{test-<pid>r…-…}` (or the older `{test-<label>-<pid>-…}`). */
function ownerPid(key: string): number | null {
  const match = /^\{test-(?:(\d+)r[a-z0-9]+-|[a-z0-9]+-(\d+)-[a-z0-9]+\})/.exec(key);
  return match ? Number(match[1] ?? match[2]) : null;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Deletes the keys runs left behind when they were killed before their teardown: keys of test
 * prefixes whose process has ended and that nobody has touched for `idleMs`. Both conditions, so
 * that a run going on in another process namespace is never touched.
 */
export async function removeKeysOfEndedRuns(redis: Redis, idleMs = 15 * 60_000, pattern = '{test-*'): Promise<number> {
  const candidates = (await scanKeys(redis, pattern)).filter((key) => {
    const pid = ownerPid(key);
    return pid !== null && !isAlive(pid);
  });
  if (candidates.length === 0) return 0;
  const pipeline = redis.pipeline();
  candidates.forEach((key) => pipeline.object('IDLETIME', key));
  const idle = (await pipeline.exec())!.map(([, seconds]) => Number(seconds) * 1000);
  const stale = candidates.filter((_, i) => idle[i] >= idleMs);
  for (let i = 0; i < stale.length; i += 500) await redis.unlink(...stale.slice(i, i + 500));
  return stale.length;
}
