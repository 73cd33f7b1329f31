import { cleanupClient, removeKeysOfEndedRuns } from './redis-cleanup';
import { newTestRunId, SHARED_REDIS_URL } from './redis-server';

/**
 * Gives the run its id before any test file loads: workers and the child processes of tests
 * inherit the environment, so every `uniquePrefix()` of the run carries it (see the teardown).
 * Also removes what runs killed before their teardown left behind.
 */
export default async function globalSetup(): Promise<void> {
  process.env.DSCHED_TEST_RUN = newTestRunId();
  const redis = cleanupClient(SHARED_REDIS_URL);
  try {
    await redis.connect();
    await removeKeysOfEndedRuns(redis);
  } catch {
    // No shared Redis: the tests that need it will say so.
  } finally {
    redis.disconnect();
  }
}
