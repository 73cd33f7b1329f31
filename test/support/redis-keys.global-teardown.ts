import { cleanUpRun, cleanupClient } from './redis-cleanup';
import { SHARED_REDIS_URL } from './redis-server';

/** Deletes every key of the run's `uniquePrefix()` prefixes from the shared Redis; fails the run if they come back. */
export default async function globalTeardown(): Promise<void> {
  const runId = process.env.DSCHED_TEST_RUN;
  if (!runId) return;
  const redis = cleanupClient(SHARED_REDIS_URL);
  try {
    await redis.connect();
  } catch {
    redis.disconnect();
    return; // No shared Redis, so nothing of the run is in it.
  }
  try {
    await cleanUpRun(redis, runId);
  } finally {
    redis.disconnect();
  }
}
