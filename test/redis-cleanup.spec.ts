import { spawn } from 'node:child_process';
import Redis from 'ioredis';
import { cleanUpRun, removeKeysOfEndedRuns, removeKeysOfRun, runKeyPattern, scanKeys } from './support/redis-cleanup';
import { newTestRunId, SHARED_REDIS_URL, TEST_RUN_ID, uniquePrefix } from './support/redis-server';

/**
 * The run's keys on the shared Redis are deleted by the global teardown. These tests check the
 * pieces on runs of their own (made-up run ids), never on the run they are part of.
 */
describe('test keys on the shared Redis', () => {
  let redis: Redis;

  beforeAll(() => {
    redis = new Redis(SHARED_REDIS_URL);
  });

  afterAll(() => redis.disconnect());

  /** Keys as the library writes them for a prefix, one without a TTL among them. */
  async function writeKeysOf(prefix: string): Promise<string[]> {
    const keys = [`{${prefix}}:job:a`, `{${prefix}}:due`, `{${prefix}}:trigger-id:a:1`];
    await redis.hset(keys[0], 'rev', 1);
    await redis.zadd(keys[1], 1, 'a');
    await redis.set(keys[2], '1', 'PX', 60_000);
    return keys;
  }

  it('gives every prefix of the run the run id that the global setup put in the environment', () => {
    expect(process.env.DSCHED_TEST_RUN).toBe(TEST_RUN_ID);
    expect(uniquePrefix('x')).toMatch(new RegExp(`^test-${TEST_RUN_ID}-x-[a-z0-9]+$`));
    expect(`{${uniquePrefix('x')}}:job:a`).toMatch(new RegExp(`^${runKeyPattern(TEST_RUN_ID).replace('{', '\\{').replace('*', '.*')}$`));
  });

  it("deletes every key of a run's prefixes, and no key of another run", async () => {
    const run = newTestRunId();
    const other = newTestRunId();
    const mine = [...(await writeKeysOf(`test-${run}-a-1`)), ...(await writeKeysOf(`test-${run}-b-2`))];
    const theirs = await writeKeysOf(`test-${other}-a-1`);
    expect(await removeKeysOfRun(redis, run)).toBe(mine.length);
    expect(await redis.exists(...mine)).toBe(0);
    expect(await redis.exists(...theirs)).toBe(theirs.length);
    expect(await cleanUpRun(redis, other, 50)).toBe(theirs.length);
    expect(await scanKeys(redis, runKeyPattern(other))).toEqual([]);
  });

  it('fails the cleanup, naming the prefix, when a process of the run keeps writing after it', async () => {
    const run = newTestRunId();
    const prefix = `test-${run}-replica-1`;
    const writer = setInterval(() => void redis.set(`{${prefix}}:replicas`, Date.now()), 10);
    try {
      await expect(cleanUpRun(redis, run, 100)).rejects.toThrow(new RegExp(`written after its tests ended.*prefix\\(es\\) ${prefix}`));
    } finally {
      clearInterval(writer);
      await removeKeysOfRun(redis, run);
    }
  });

  it('removes what a killed run left behind once its process is gone and its keys are idle, keeping live runs', async () => {
    const ended = await new Promise<number>((resolve) => {
      const child = spawn(process.execPath, ['-e', '']);
      child.once('exit', () => resolve(child.pid!));
    });
    const deadRun = `${ended}rdeadzz`;
    const left = await writeKeysOf(`test-${deadRun}-a-1`);
    const live = await writeKeysOf(`test-${process.pid}rlivezz-a-1`);
    // Only this test's made-up runs: other runs' keys are the global setup's business.
    const ours = '{test-*zz-a-1}*';
    // Touched just now: a run in another process namespace could still be using them.
    await removeKeysOfEndedRuns(redis, 60_000, ours);
    expect(await redis.exists(...left)).toBe(left.length);
    await removeKeysOfEndedRuns(redis, 0, ours);
    expect(await redis.exists(...left)).toBe(0);
    expect(await redis.exists(...live)).toBe(live.length);
    await removeKeysOfRun(redis, `${process.pid}rlivezz`);
  });
});
