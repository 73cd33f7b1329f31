import { filter, firstValueFrom } from 'rxjs';
import { ClaimResult, Coordinator, JobRegistration } from '../lib/coordination/coordinator.interface';
import { EmbeddedCoordinator } from '../lib/coordination/embedded/embedded.coordinator';
import { RedisCoordinator } from '../lib/coordination/redis/redis.coordinator';
import type { OverlapPolicy } from '../lib/scheduling/distributed-job-options.interface';
import { SHARED_REDIS_URL, uniquePrefix } from './support/redis-server';
import { leaseTask } from './support/task-lease';

/**
 * The coordinator's part of retries, on both coordinators: a run's release with a retry delay
 * leaves a pending retry (a trigger with a not-before time), claimed as a new attempt with a new
 * fencing token, serving the same time; a task's retry is taken outside the overlap policy; a
 * release that finds its lease gone writes no retry.
 */
const factories = [
  { name: 'RedisCoordinator', create: (prefix: string): Coordinator => new RedisCoordinator(SHARED_REDIS_URL, prefix) },
  { name: 'EmbeddedCoordinator', create: (): Coordinator => new EmbeddedCoordinator() },
];

const INSTANCE = 'replica-a';
const TTL = 30_000;
type Claimed = Extract<ClaimResult, { status: 'claimed' }>;

function onDemand(name: string, overlap: OverlapPolicy = 'skip'): JobRegistration {
  const definition = { spec: null, overlap, paused: false };
  return { name, definition, definitionHash: JSON.stringify(definition), first: null };
}

describe.each(factories)('retries on $name', ({ create }) => {
  let coordinator: Coordinator;

  beforeEach(async () => {
    coordinator = create(uniquePrefix('retry-contract'));
    await coordinator.connect();
    await firstValueFrom(coordinator.available$.pipe(filter(Boolean)));
  });

  afterEach(() => coordinator.close());

  async function pendingMember(name: string): Promise<string> {
    const { triggers } = await coordinator.snapshot([name], INSTANCE);
    expect(triggers).toHaveLength(1);
    return triggers[0].member;
  }

  /** Claims a pending trigger; answered `early`, waits as long as told and claims again. */
  async function claimWhenDue(name: string, member: string): Promise<{ result: ClaimResult; early: boolean }> {
    const claim = () => coordinator.claim([{ name, rev: 1, next: null, member }], INSTANCE, TTL);
    let [result] = await claim();
    const early = result.status === 'early';
    if (result.status === 'early') {
      await new Promise((resolve) => setTimeout(resolve, (result as { waitMs: number }).waitMs + 5));
      [result] = await claim();
    }
    return { result, early };
  }

  it('writes the retry with the release, not claimable before its time, then claimed as the next attempt with a new token', async () => {
    await coordinator.register([onDemand('flaky')], 'boot', INSTANCE);
    await coordinator.requestTrigger('flaky', 'MANUAL', 'one');
    const [first] = (await coordinator.claim([{ name: 'flaky', rev: 1, next: null, member: await pendingMember('flaky') }], INSTANCE, TTL)) as Claimed[];
    expect(first).toMatchObject({ status: 'claimed', trigger: 'MANUAL' });
    expect(first.attempt).toBeUndefined();

    expect(await coordinator.finish([{ name: 'flaky', fencingToken: first.fencingToken, status: 'error', error: 'boom', retryDelay: 300 }])).toEqual([true]);
    const [record] = await coordinator.describe(['flaky']);
    expect(record.pendingRetries).toEqual([{ attempt: 2, scheduledAt: first.scheduledAt, notBefore: expect.any(Number), trigger: 'MANUAL', firstFencingToken: first.fencingToken }]);
    expect(record.pendingRetries[0].notBefore - first.startedAt).toBeGreaterThanOrEqual(300);
    expect(record.lastRun).toMatchObject({ fencingToken: first.fencingToken, status: 'error' });

    const { result, early } = await claimWhenDue('flaky', await pendingMember('flaky'));
    expect(early).toBe(true);
    const second = result as Claimed;
    expect(second).toMatchObject({ status: 'claimed', attempt: 2, firstFencingToken: first.fencingToken, scheduledAt: first.scheduledAt, trigger: 'MANUAL' });
    expect(second.fencingToken).toBeGreaterThan(first.fencingToken);
    expect(second.startedAt - first.startedAt).toBeGreaterThanOrEqual(300);
    const [running] = await coordinator.describe(['flaky']);
    expect(running.pendingRetries).toEqual([]);
    expect(running.running).toEqual([expect.objectContaining({ fencingToken: second.fencingToken, attempt: 2 })]);
    expect(running.lastRun).toMatchObject({ fencingToken: second.fencingToken, attempt: 2, status: 'running' });

    // The third attempt still names the first one's token.
    await coordinator.finish([{ name: 'flaky', fencingToken: second.fencingToken, status: 'error', error: 'boom', retryDelay: 1 }]);
    const { result: third } = await claimWhenDue('flaky', await pendingMember('flaky'));
    expect(third).toMatchObject({ status: 'claimed', attempt: 3, firstFencingToken: first.fencingToken, scheduledAt: first.scheduledAt });
  });

  it("claims a job run's retry under the overlap policy, and a task's retry outside it", async () => {
    await coordinator.register([onDemand('fanout')], 'boot', INSTANCE);
    const task = await leaseTask(coordinator, 'fanout', INSTANCE, TTL, 42);
    const other = await leaseTask(coordinator, 'fanout', INSTANCE, TTL, 43);
    await coordinator.finish([{ name: 'fanout', fencingToken: task.fencingToken, status: 'error', error: 'boom', retryDelay: 1 }]);
    const [record] = await coordinator.describe(['fanout']);
    expect(record.pendingRetries).toEqual([expect.objectContaining({ attempt: 2, taskId: 42, trigger: 'EVENT', firstFencingToken: task.fencingToken })]);
    // Task 43 still runs, overlap is 'skip': the task's retry is taken all the same.
    const { result } = await claimWhenDue('fanout', await pendingMember('fanout'));
    expect(result).toMatchObject({ status: 'claimed', attempt: 2, taskId: 42, firstFencingToken: task.fencingToken });
    expect((result as Claimed).fencingToken).toBeGreaterThan(other.fencingToken);
    // A task's attempt is no run of the job: its last run is untouched.
    expect((await coordinator.describe(['fanout']))[0].lastRun).toBeNull();

    // A job run's retry while a run of the job lives: skipped, under 'skip'.
    await coordinator.register([onDemand('single')], 'boot', INSTANCE);
    await coordinator.requestTrigger('single', 'MANUAL', 'a');
    const [run] = (await coordinator.claim([{ name: 'single', rev: 1, next: null, member: await pendingMember('single') }], INSTANCE, TTL)) as Claimed[];
    await coordinator.finish([{ name: 'single', fencingToken: run.fencingToken, status: 'error', error: 'boom', retryDelay: 1 }]);
    const retry = await pendingMember('single');
    // A run of the job (a task's lease would not count: tasks are outside the overlap policy).
    await coordinator.requestTrigger('single', 'MANUAL', 'b');
    const { triggers } = await coordinator.snapshot(['single'], INSTANCE);
    const manual = triggers.find((trigger) => trigger.id === 'b')!.member;
    expect((await coordinator.claim([{ name: 'single', rev: 1, next: null, member: manual }], INSTANCE, TTL))[0].status).toBe('claimed');
    const { result: skipped } = await claimWhenDue('single', retry);
    expect(skipped).toMatchObject({ status: 'skipped', reason: 'running' });
  });

  it('writes no retry for a run whose lease is gone', async () => {
    await coordinator.register([onDemand('stopped')], 'boot', INSTANCE);
    const lease = await leaseTask(coordinator, 'stopped', INSTANCE, TTL, 9);
    expect(await coordinator.stop('stopped', lease.fencingToken)).toBe(true);
    expect(await coordinator.finish([{ name: 'stopped', fencingToken: lease.fencingToken, status: 'error', error: 'boom', retryDelay: 1 }])).toEqual([false]);
    const [record] = await coordinator.describe(['stopped']);
    expect(record.pendingRetries).toEqual([]);
    expect(record.pendingTriggers).toBe(0);
  });
});
