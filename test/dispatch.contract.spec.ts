import { filter, firstValueFrom, Subscription } from 'rxjs';
import { ClaimResult, CoordinationEvent, Coordinator, JobRegistration, MAX_PENDING_TRIGGERS } from '../lib/coordination/coordinator.interface';
import { EmbeddedCoordinator } from '../lib/coordination/embedded/embedded.coordinator';
import { RedisCoordinator } from '../lib/coordination/redis/redis.coordinator';
import type { OverlapPolicy } from '../lib/scheduling/distributed-job-options.interface';
import { SHARED_REDIS_URL, uniquePrefix } from './support/redis-server';

/**
 * The coordinator's part of task dispatch, on both coordinators: a task is a pending trigger of
 * its job (`task:<id>`), uncapped, claimed by one replica as a lease naming the task; the job's
 * `concurrency` bounds its live task leases (`busy` beyond); tasks and the job's scheduled runs
 * never see each other under any overlap policy or the manual lock; `stopTask` withdraws a
 * pending task (and a pending retry) and revokes a running one, in one step.
 */
const factories = [
  { name: 'RedisCoordinator', create: (prefix: string): Coordinator => new RedisCoordinator(SHARED_REDIS_URL, prefix) },
  { name: 'EmbeddedCoordinator', create: (): Coordinator => new EmbeddedCoordinator() },
];

const A = 'replica-a';
const B = 'replica-b';
const TTL = 30_000;
type Claimed = Extract<ClaimResult, { status: 'claimed' }>;

function onDemand(name: string, overlap: OverlapPolicy = 'skip'): JobRegistration {
  const definition = { spec: null, overlap, paused: false };
  return { name, definition, definitionHash: JSON.stringify(definition), first: null };
}

const taskMember = (name: string, taskId: number) => `${name}\nEVENT\ntask:${taskId}`;

describe.each(factories)('task dispatch on $name', ({ create }) => {
  let coordinator: Coordinator;
  const events: CoordinationEvent[] = [];
  let subscription: Subscription;

  beforeEach(async () => {
    coordinator = create(uniquePrefix('dispatch-contract'));
    events.length = 0;
    subscription = coordinator.events$.subscribe((event) => events.push(event));
    await coordinator.connect();
    await firstValueFrom(coordinator.available$.pipe(filter(Boolean)));
  });

  afterEach(async () => {
    subscription.unsubscribe();
    await coordinator.close();
  });

  const claimTask = (name: string, taskId: number, instance = A, concurrency?: number) =>
    coordinator.claim([{ name, rev: 1, next: null, member: taskMember(name, taskId), ...(concurrency !== undefined ? { concurrency } : {}) }], instance, TTL).then(([result]) => result);
  const claimTrigger = async (name: string, instance = A) => {
    const { triggers } = await coordinator.snapshot([name], instance);
    const manual = triggers.find((trigger) => trigger.trigger === 'MANUAL')!;
    return (await coordinator.claim([{ name, rev: 1, next: null, member: manual.member }], instance, TTL))[0];
  };

  it('puts tasks as pending triggers beyond the trigger limit, each once, announced; unknown jobs answered false', async () => {
    await coordinator.register([onDemand('fan-out')], 'boot', A);
    const ids = Array.from({ length: 150 }, (_, i) => i + 1);
    expect(await coordinator.dispatchTasks(ids.map((taskId) => ({ name: 'fan-out', taskId })))).toEqual(ids.map(() => true));
    expect(await coordinator.dispatchTasks([{ name: 'fan-out', taskId: 1 }, { name: 'nope', taskId: 2 }])).toEqual([true, false]);
    const { triggers } = await coordinator.snapshot(['fan-out'], A);
    expect(triggers).toHaveLength(150);
    expect(triggers[0]).toMatchObject({ name: 'fan-out', trigger: 'EVENT', id: expect.stringMatching(/^task:\d+$/) });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(events.filter((event) => event.type === 'trigger')).toHaveLength(150);
  });

  it('does not count dispatched tasks against the cap on pending triggers: a backlog of tasks never refuses a trigger', async () => {
    await coordinator.register([onDemand('busy-queue', 'allow')], 'boot', A);
    await coordinator.dispatchTasks(Array.from({ length: MAX_PENDING_TRIGGERS + 50 }, (_, i) => ({ name: 'busy-queue', taskId: i + 1 })));
    for (let i = 0; i < MAX_PENDING_TRIGGERS; i++) {
      expect((await coordinator.requestTrigger('busy-queue', 'MANUAL', `r${i}`, 60_000)).status).toBe('accepted');
    }
    // The callers' own requests still are capped.
    expect(await coordinator.requestTrigger('busy-queue', 'MANUAL', 'one-too-many', 60_000)).toEqual({ status: 'full', pending: MAX_PENDING_TRIGGERS });
  });

  it('says which tasks still wait to be claimed: dispatched yes; claimed, stopped, never dispatched or of an unknown job no', async () => {
    await coordinator.register([onDemand('backlog')], 'boot', A);
    await coordinator.dispatchTasks([1, 2, 3].map((taskId) => ({ name: 'backlog', taskId })));
    expect(await coordinator.tasksPending('backlog', [1, 2, 3, 4])).toEqual([true, true, true, false]);
    expect((await claimTask('backlog', 1)).status).toBe('claimed');
    await coordinator.stopTask('backlog', 2);
    expect(await coordinator.tasksPending('backlog', [1, 2, 3])).toEqual([false, false, true]);
    expect(await coordinator.tasksPending('nope', [3])).toEqual([false]);
    expect(await coordinator.tasksPending('backlog', [])).toEqual([]);
  });

  it('lets one replica take a task, under a lease naming it, with no last run of the job', async () => {
    await coordinator.register([onDemand('work')], 'boot', A);
    await coordinator.dispatchTasks([{ name: 'work', taskId: 7 }]);
    const won = (await claimTask('work', 7, A)) as Claimed;
    expect(won).toMatchObject({ status: 'claimed', trigger: 'EVENT', taskId: 7 });
    expect(won.attempt).toBeUndefined();
    expect((await claimTask('work', 7, B)).status).toBe('gone');
    // Its claim sent again (a lost reply) gets the same lease.
    expect(await claimTask('work', 7, A)).toMatchObject({ status: 'claimed', fencingToken: won.fencingToken, taskId: 7 });
    const [record] = await coordinator.describe(['work']);
    expect(record.running).toEqual([expect.objectContaining({ fencingToken: won.fencingToken, instanceId: A, taskId: 7 })]);
    expect(record.lastRun).toBeNull();
    expect(await coordinator.finish([{ name: 'work', fencingToken: won.fencingToken, status: 'success', error: null }])).toEqual([true]);
  });

  it("keeps a job's tasks within its concurrency across replicas: busy beyond it, nothing consumed, claimable once one ends", async () => {
    await coordinator.register([onDemand('limited', 'allow')], 'boot', A);
    await coordinator.dispatchTasks([1, 2, 3].map((taskId) => ({ name: 'limited', taskId })));
    const first = (await claimTask('limited', 1, A, 2)) as Claimed;
    // B's lease taken a millisecond later at least, so A's is the one to expire first (the holder named).
    while (Date.now() <= first.startedAt) await new Promise((resolve) => setTimeout(resolve, 1));
    const second = (await claimTask('limited', 2, B, 2)) as Claimed;
    expect([first.status, second.status]).toEqual(['claimed', 'claimed']);
    const busy = await claimTask('limited', 3, B, 2);
    expect(busy).toMatchObject({ status: 'busy', holder: A });
    // Scheduled runs of the job do not count against it, nor does it bound them.
    await coordinator.requestTrigger('limited', 'MANUAL', 'm');
    expect((await claimTrigger('limited')).status).toBe('claimed');
    await coordinator.finish([{ name: 'limited', fencingToken: first.fencingToken, status: 'success', error: null }]);
    expect(await claimTask('limited', 3, B, 2)).toMatchObject({ status: 'claimed', taskId: 3 });
  });

  describe('tasks are invisible to the overlap policy and the lock of scheduled fires', () => {
    it("'cancel-previous': a fire replaces the job's previous run, never a task", async () => {
      await coordinator.register([onDemand('replace', 'cancel-previous')], 'boot', A);
      await coordinator.dispatchTasks([{ name: 'replace', taskId: 1 }]);
      const task = (await claimTask('replace', 1)) as Claimed;
      await coordinator.requestTrigger('replace', 'MANUAL', 'one');
      const fire = (await claimTrigger('replace', B)) as Claimed;
      expect(fire.status).toBe('claimed');
      await coordinator.requestTrigger('replace', 'MANUAL', 'two');
      expect((await claimTrigger('replace', B)).status).toBe('claimed');
      await new Promise((resolve) => setTimeout(resolve, 50));
      // The second fire replaced the first, not the task.
      expect(events.filter((event) => event.type === 'cancel')).toEqual([{ type: 'cancel', name: 'replace', fencingToken: fire.fencingToken, reason: 'replaced' }]);
      expect(await coordinator.extend([{ name: 'replace', fencingToken: task.fencingToken }], TTL)).toEqual([true]);
    });

    it("'skip': a running task skips no fire, and a running fire holds back no task", async () => {
      await coordinator.register([onDemand('skipper', 'skip')], 'boot', A);
      await coordinator.dispatchTasks([1, 2].map((taskId) => ({ name: 'skipper', taskId })));
      expect((await claimTask('skipper', 1)).status).toBe('claimed');
      expect(await coordinator.requestTrigger('skipper', 'MANUAL', 'one')).toMatchObject({ status: 'accepted' });
      expect((await claimTrigger('skipper', B)).status).toBe('claimed');
      // A fire runs now: the next request is skipped for it (the policy between fires), a task is not.
      expect(await coordinator.requestTrigger('skipper', 'MANUAL', 'two')).toMatchObject({ status: 'skipped', reason: 'running', holder: B });
      expect((await claimTask('skipper', 2)).status).toBe('claimed');
    });

    it("'lock': a running task does not refuse the manual lock, and the lock holds back no task", async () => {
      await coordinator.register([onDemand('lockable')], 'boot', A);
      await coordinator.dispatchTasks([1, 2].map((taskId) => ({ name: 'lockable', taskId })));
      expect((await claimTask('lockable', 1)).status).toBe('claimed');
      expect(await coordinator.lock('lockable', 'ops', null)).toEqual({ status: 'locked' });
      expect((await claimTask('lockable', 2)).status).toBe('claimed');
      await coordinator.requestTrigger('lockable', 'MANUAL', 'one');
      await expect(coordinator.requestTrigger('lockable', 'MANUAL', 'two')).resolves.toMatchObject({ status: 'skipped', reason: 'locked' });
    });
  });

  describe('stopTask', () => {
    it('withdraws a pending task in one step: no replica can take it afterwards', async () => {
      await coordinator.register([onDemand('stoppable')], 'boot', A);
      await coordinator.dispatchTasks([1, 2].map((taskId) => ({ name: 'stoppable', taskId })));
      expect(await coordinator.stopTask('stoppable', 1, 'req-1')).toEqual({ withdrawn: 1, revoked: 0 });
      // Sent again: its first answer.
      expect(await coordinator.stopTask('stoppable', 1, 'req-1')).toEqual({ withdrawn: 1, revoked: 0 });
      expect((await claimTask('stoppable', 1)).status).toBe('gone');
      const { triggers } = await coordinator.snapshot(['stoppable'], A);
      expect(triggers.map((trigger) => trigger.id)).toEqual(['task:2']);
    });

    it('revokes a running task wherever it runs and tells its replica; removes a pending retry of it', async () => {
      await coordinator.register([onDemand('running')], 'boot', A);
      await coordinator.dispatchTasks([1, 2].map((taskId) => ({ name: 'running', taskId })));
      const running = (await claimTask('running', 1, B)) as Claimed;
      const cancelled = firstValueFrom(coordinator.events$.pipe(filter((e) => e.type === 'cancel')));
      expect(await coordinator.stopTask('running', 1)).toEqual({ withdrawn: 0, revoked: 1 });
      expect(await cancelled).toEqual({ type: 'cancel', name: 'running', fencingToken: running.fencingToken, reason: 'stopped' });
      expect(await coordinator.extend([{ name: 'running', fencingToken: running.fencingToken }], TTL)).toEqual([false]);

      // Task 2 fails and waits for its retry: the stop removes the retry.
      const failing = (await claimTask('running', 2, A)) as Claimed;
      expect(await coordinator.finish([{ name: 'running', fencingToken: failing.fencingToken, status: 'error', error: 'boom', retryDelay: 60_000 }])).toEqual([true]);
      expect((await coordinator.describe(['running']))[0].pendingRetries).toEqual([expect.objectContaining({ taskId: 2, attempt: 2 })]);
      expect(await coordinator.stopTask('running', 2)).toEqual({ withdrawn: 1, revoked: 0 });
      expect((await coordinator.describe(['running']))[0].pendingRetries).toEqual([]);
    });
  });
});
