import type { ReplicaMessage } from './fixtures/replica.main';
import { Replica, RunEvent } from './support/replica';
import { SHARED_REDIS_URL, uniquePrefix } from './support/redis-server';
import { eventually, EventLog } from './support/wait';

/**
 * A pending retry lives in Redis, not in the process that ran the failed attempt: with that
 * replica killed (SIGKILL, no shutdown) between two attempts, another replica runs the next one,
 * as a new claim with a new fencing token, serving the same time.
 */
describe('retries across real replicas', () => {
  jest.setTimeout(60_000);
  const log = new EventLog<ReplicaMessage>();
  const replicas: Replica[] = [];
  const runsOf = (name: string) => log.events.filter((event): event is RunEvent => event.type === 'run' && event.name === name);

  afterEach(async () => {
    await Promise.all(replicas.splice(0).map((replica) => replica.kill()));
  });

  it('runs the next attempt on another replica when the one that failed is killed between attempts', async () => {
    const keyPrefix = uniquePrefix('retry-e2e');
    const jobs = [{ name: 'flaky', failAttempts: 1, retry: { attempts: 3, backoff: { delay: 2_000 } } }];
    replicas.push(...(await Promise.all(['r1', 'r2'].map((instanceId) => Replica.start({ redisUrl: SHARED_REDIS_URL, keyPrefix, instanceId, jobs }, log)))));
    await replicas[0].call('trigger', 'flaky');
    const first = await log.until('attempt 1', () => runsOf('flaky')[0]);
    expect(first.attempt).toBe(1);
    const failed = replicas.find((replica) => replica.instanceId === first.instanceId)!;
    const survivor = replicas.find((replica) => replica !== failed)!;

    // The retry is written with the failed attempt's release; then its replica dies.
    type Described = { pendingRetries: { attempt: number; firstFencingToken: number }[] };
    const described = await eventually('the pending retry', () => survivor.call<Described>('describe', 'flaky'), (job) => job.pendingRetries.length === 1);
    expect(described.pendingRetries[0]).toMatchObject({ attempt: 2, firstFencingToken: first.fencingToken });
    await failed.kill();

    const second = await log.until('attempt 2', () => runsOf('flaky')[1]);
    expect(second).toMatchObject({ instanceId: survivor.instanceId, attempt: 2, scheduledAt: first.scheduledAt, trigger: 'MANUAL' });
    expect(second.fencingToken).toBeGreaterThan(first.fencingToken);
    expect(second.startedAt - first.startedAt).toBeGreaterThanOrEqual(2_000);
    expect(second.startedAt - first.startedAt).toBeLessThan(15_000);
    // It succeeded: no third attempt, nothing pending.
    await eventually('the end of attempt 2', () => survivor.call<Described & { lastRun: { status: string } }>('describe', 'flaky'), (job) => job.lastRun.status === 'success');
    expect(runsOf('flaky')).toHaveLength(2);
  });
});
