import { filter, firstValueFrom } from 'rxjs';
import { ClaimResult, Coordinator, JobRegistration, RecoveryOutcome } from '../lib/coordination/coordinator.interface';
import { EmbeddedCoordinator } from '../lib/coordination/embedded/embedded.coordinator';
import { RedisCoordinator } from '../lib/coordination/redis/redis.coordinator';
import { SHARED_REDIS_URL, uniquePrefix } from './support/redis-server';
import { leaseTask } from './support/task-lease';

/**
 * The coordinator's part of recovering runs whose replica died (Redis: the leases zset and
 * recover.lua): a lease that expired without a finish is found by one cheap read, and recovered
 * once, as its next attempt (a pending retry due now) or, with no attempt left, counted as
 * abandoned; the dead run is fenced (finish, extend and checkpoint refused). And removing a run's
 * pending retries between attempts, on both coordinators.
 */
const INSTANCE = 'replica-a';
const SHORT_TTL = 150;
type Claimed = Extract<ClaimResult, { status: 'claimed' }>;

function onDemand(name: string): JobRegistration {
  const definition = { spec: null, overlap: 'skip' as const, paused: false };
  return { name, definition, definitionHash: JSON.stringify(definition), first: null };
}

async function connected(coordinator: Coordinator): Promise<Coordinator> {
  await coordinator.connect();
  await firstValueFrom(coordinator.available$.pipe(filter(Boolean)));
  return coordinator;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('recovery of runs whose replica died, on RedisCoordinator', () => {
  let coordinator: Coordinator;

  beforeEach(async () => {
    coordinator = await connected(new RedisCoordinator(SHARED_REDIS_URL, uniquePrefix('recovery-contract')));
  });

  afterEach(() => coordinator.close());

  /** A manual run of `name` claimed with a short lease, by the replica that will "die". */
  async function claimRun(name: string, ttl = SHORT_TTL): Promise<Claimed> {
    await coordinator.requestTrigger(name, 'MANUAL', `run-${Math.random()}`);
    const { triggers } = await coordinator.snapshot([name], INSTANCE);
    const [claimed] = await coordinator.claim([{ name, rev: 1, next: null, member: triggers[0].member }], INSTANCE, ttl);
    expect(claimed.status).toBe('claimed');
    return claimed as Claimed;
  }

  it('finds a lease that expired without a finish, and recovers it once as its next attempt, with the checkpoint; the dead run is fenced', async () => {
    await coordinator.register([onDemand('work')], 'boot', INSTANCE);
    const dead = await claimRun('work');
    expect(await coordinator.saveCheckpoint('work', dead.fencingToken, '{"done":7}', Date.now())).toEqual({ status: 'saved' });
    expect((await coordinator.expiredLeases(10)).expired).toEqual([]);
    await pause(SHORT_TTL + 20);

    const { expired } = await coordinator.expiredLeases(10);
    expect(expired).toEqual([{ name: 'work', fencingToken: dead.fencingToken, expiredAt: expect.any(Number) }]);
    const [recovered] = await coordinator.recoverLeases([{ name: 'work', fencingToken: dead.fencingToken, attempts: 3 }]);
    expect(recovered).toMatchObject({ status: 'recovered', attempt: 2, instanceId: INSTANCE, scheduledAt: dead.scheduledAt, trigger: 'MANUAL', firstFencingToken: dead.fencingToken });
    // Exactly once: a second replica (or a second look) finds nothing left to recover.
    expect(await coordinator.recoverLeases([{ name: 'work', fencingToken: dead.fencingToken, attempts: 3 }])).toEqual([
      { status: 'gone', name: 'work', fencingToken: dead.fencingToken },
    ]);
    expect((await coordinator.expiredLeases(10)).expired).toEqual([]);

    const [record] = await coordinator.describe(['work']);
    expect(record).toMatchObject({ recoveredRuns: 1, abandonedRuns: 0, running: [], awaitingRecovery: [] });
    expect(record.lastRun).toMatchObject({ fencingToken: dead.fencingToken, status: 'abandoned' });
    expect(record.lastRun!.error).toMatch(/without a finish.*attempt 2 recovers it/);
    expect(record.pendingRetries).toEqual([expect.objectContaining({ attempt: 2, firstFencingToken: dead.fencingToken, scheduledAt: dead.scheduledAt })]);

    // The dead run, back (a paused process): its checkpoint, renewal and finish are refused.
    expect(await coordinator.saveCheckpoint('work', dead.fencingToken, '{"done":8}', Date.now())).toMatchObject({ status: 'stale' });
    expect(await coordinator.extend([{ name: 'work', fencingToken: dead.fencingToken }], 30_000)).toEqual([false]);
    expect(await coordinator.finish([{ name: 'work', fencingToken: dead.fencingToken, status: 'success', error: null }])).toEqual([false]);

    // The next attempt is due now, and starts from the last checkpoint the dead run flushed.
    const { triggers } = await coordinator.snapshot(['work'], INSTANCE);
    const [next] = (await coordinator.claim([{ name: 'work', rev: 1, next: null, member: triggers[0].member }], 'replica-b', 30_000)) as Claimed[];
    expect(next).toMatchObject({ status: 'claimed', attempt: 2, firstFencingToken: dead.fencingToken, scheduledAt: dead.scheduledAt });
    expect(next.fencingToken).toBeGreaterThan(dead.fencingToken);
    expect(next.checkpoint).toMatchObject({ state: '{"done":7}', fencingToken: dead.fencingToken });
    // The zombie's finish, late, cannot overwrite the recovered attempt's outcome.
    expect(await coordinator.finish([{ name: 'work', fencingToken: next.fencingToken, status: 'success', error: null }])).toEqual([true]);
    expect(await coordinator.finish([{ name: 'work', fencingToken: dead.fencingToken, status: 'error', error: 'late' }])).toEqual([false]);
    expect((await coordinator.describe(['work']))[0].lastRun).toMatchObject({ fencingToken: next.fencingToken, status: 'success', attempt: 2 });
  });

  it("leaves a run claimed after the dead lease expired writing its checkpoints when the dead run is recovered later", async () => {
    await coordinator.register([onDemand('next')], 'boot', INSTANCE);
    const dead = await claimRun('next');
    await pause(SHORT_TTL + 20);
    // The job's next run is claimed before any replica looked at the dead lease (recovery runs at most a heartbeat later).
    const live = await claimRun('next', 30_000);
    await pause(5);
    expect(await coordinator.recoverLeases([{ name: 'next', fencingToken: dead.fencingToken, attempts: 1 }])).toEqual([
      expect.objectContaining({ status: 'abandoned', fencingToken: dead.fencingToken }),
    ]);
    expect(await coordinator.saveCheckpoint('next', live.fencingToken, '{"done":3}', Date.now())).toEqual({ status: 'saved' });
    expect(await coordinator.saveCheckpoint('next', dead.fencingToken, '{"done":1}', Date.now())).toMatchObject({ status: 'stale' });
  });

  it('counts a dead run as abandoned when its attempts are used up, and starts nothing', async () => {
    await coordinator.register([onDemand('once')], 'boot', INSTANCE);
    const dead = await claimRun('once');
    await pause(SHORT_TTL + 20);
    const outcomes: RecoveryOutcome[] = await coordinator.recoverLeases([{ name: 'once', fencingToken: dead.fencingToken, attempts: 1 }]);
    expect(outcomes).toEqual([expect.objectContaining({ status: 'abandoned', attempt: 1, name: 'once', fencingToken: dead.fencingToken })]);
    const [record] = await coordinator.describe(['once']);
    expect(record).toMatchObject({ abandonedRuns: 1, recoveredRuns: 0, pendingRetries: [], pendingTriggers: 0 });
    expect(record.lastRun).toMatchObject({ status: 'abandoned', error: expect.stringMatching(/no attempt left \(retry\.attempts 1\)/) });
  });

  it('keeps a renewed lease off the list (each renewal moves its expiry), and a finished or stopped run too', async () => {
    await coordinator.register([onDemand('long'), onDemand('ended'), onDemand('stopped')], 'boot', INSTANCE);
    const live = await claimRun('long', 300);
    const ended = await claimRun('ended');
    const stopped = await claimRun('stopped');
    expect(await coordinator.finish([{ name: 'ended', fencingToken: ended.fencingToken, status: 'success', error: null }])).toEqual([true]);
    await pause(SHORT_TTL + 20);
    // Stopped after its replica died: ended by the stop, not recovered.
    expect(await coordinator.stop('stopped', stopped.fencingToken)).toBe(false);
    expect(await coordinator.extend([{ name: 'long', fencingToken: live.fencingToken }], 1_000)).toEqual([true]);
    const { expired, nextExpiry } = await coordinator.expiredLeases(10);
    expect(expired).toEqual([]);
    const [record] = await coordinator.describe(['long']);
    expect(nextExpiry).toBe(record.running[0].expiresAt);
  });

  it('leaves an expired lease awaiting recovery visible, not running, and recovers a task lease as the task\'s next attempt', async () => {
    await coordinator.register([onDemand('task-job')], 'boot', INSTANCE);
    const lease = await leaseTask(coordinator, 'task-job', INSTANCE, SHORT_TTL, 42);
    await pause(SHORT_TTL + 20);
    const [waiting] = await coordinator.describe(['task-job']);
    expect(waiting.running).toEqual([]);
    expect(waiting.awaitingRecovery).toEqual([expect.objectContaining({ fencingToken: lease.fencingToken, taskId: 42 })]);
    const [recovered] = await coordinator.recoverLeases([{ name: 'task-job', fencingToken: lease.fencingToken, attempts: 2 }]);
    expect(recovered).toMatchObject({ status: 'recovered', attempt: 2, taskId: 42, trigger: 'EVENT' });
    const { triggers } = await coordinator.snapshot(['task-job'], INSTANCE);
    const [next] = (await coordinator.claim([{ name: 'task-job', rev: 1, next: null, member: triggers[0].member }], 'replica-b', 30_000)) as Claimed[];
    expect(next).toMatchObject({ status: 'claimed', attempt: 2, taskId: 42, firstFencingToken: lease.fencingToken });
  });
});

describe.each([
  { name: 'RedisCoordinator', create: (): Coordinator => new RedisCoordinator(SHARED_REDIS_URL, uniquePrefix('recovery-contract')) },
  { name: 'EmbeddedCoordinator', create: (): Coordinator => new EmbeddedCoordinator() },
])('pending retries removed between attempts, on $name', ({ create }) => {
  let coordinator: Coordinator;

  beforeEach(async () => {
    coordinator = await connected(create());
  });

  afterEach(() => coordinator.close());

  it("removes a task's pending retry, or a run's by its first token, and no other", async () => {
    await coordinator.register([onDemand('job')], 'boot', INSTANCE);
    const task = await leaseTask(coordinator, 'job', INSTANCE, 30_000, 7);
    const other = await leaseTask(coordinator, 'job', INSTANCE, 30_000, 8);
    await coordinator.finish([
      { name: 'job', fencingToken: task.fencingToken, status: 'error', error: 'boom', retryDelay: 60_000 },
      { name: 'job', fencingToken: other.fencingToken, status: 'error', error: 'boom', retryDelay: 60_000 },
    ]);
    expect((await coordinator.describe(['job']))[0].pendingRetries).toHaveLength(2);
    expect(await coordinator.cancelRetries('job', { taskId: 7 })).toBe(1);
    expect(await coordinator.cancelRetries('job', { taskId: 7 })).toBe(0);
    expect((await coordinator.describe(['job']))[0].pendingRetries).toEqual([expect.objectContaining({ taskId: 8 })]);
    expect(await coordinator.cancelRetries('job', { firstFencingToken: other.fencingToken })).toBe(1);
    expect((await coordinator.describe(['job']))[0].pendingTriggers).toBe(0);
  });
});
