import { Injectable } from '@nestjs/common';
import Redis from 'ioredis';
import { firstValueFrom, filter } from 'rxjs';
import { DistributedJob, JobScheduler } from '../lib';
import { Coordinator, JobRegistration } from '../lib/coordination/coordinator.interface';
import { EmbeddedCoordinator } from '../lib/coordination/embedded/embedded.coordinator';
import { RedisCoordinator } from '../lib/coordination/redis/redis.coordinator';
import { RECOVERY_GRACE_MS } from '../lib/retry/retry.constants';
import { bootApp } from './support/app';
import { SHARED_REDIS_URL, uniquePrefix } from './support/redis-server';
import { leaseTask } from './support/task-lease';
import { EventLog } from './support/wait';

/** Nothing the coordinator keeps grows forever, and an idle replica's cost does not grow with the changes made. */

function onDemand(name: string): JobRegistration {
  const definition = { spec: null, overlap: 'skip' as const, paused: false };
  return { name, definition, definitionHash: JSON.stringify(definition), first: null };
}

/** Polls `check` until it holds: expiry is Redis's (or the clock's) business, with no event to await. */
async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('growth', () => {
  let redis: Redis;
  beforeAll(() => (redis = new Redis(SHARED_REDIS_URL)));
  afterAll(() => redis.disconnect());

  describe.each([
    { name: 'RedisCoordinator', create: (prefix: string) => new RedisCoordinator(SHARED_REDIS_URL, prefix, 300) },
    { name: 'EmbeddedCoordinator', create: () => new EmbeddedCoordinator(300) },
  ])('$name', ({ create }) => {
    let coordinator: Coordinator;
    let prefix: string;
    beforeEach(async () => {
      prefix = uniquePrefix('growth');
      coordinator = create(prefix);
      await coordinator.connect();
      await firstValueFrom(coordinator.available$.pipe(filter(Boolean)));
    });
    afterEach(() => coordinator.close());

    it('drops the pending triggers of a job no replica claims once their time is up', async () => {
      // Registered by a replica that is gone: nobody declares the job any more.
      await coordinator.register([onDemand('orphan')], 'boot', 'gone');
      expect((await coordinator.requestTrigger('orphan', 'MANUAL', 'one')).status).toBe('accepted');
      expect((await coordinator.requestTrigger('orphan', 'MANUAL', 'two')).status).toBe('accepted');
      expect((await coordinator.describe(['orphan']))[0].pendingTriggers).toBe(2);
      await eventually('the orphan triggers to expire', async () => (await coordinator.describe(['orphan']))[0].pendingTriggers === 0);
      expect((await coordinator.snapshot(['orphan'], 'any')).triggers).toEqual([]);
      if (coordinator instanceof RedisCoordinator) expect(await redis.exists(`{${prefix}}:triggers:orphan`)).toBe(0);
    });
  });

  it('lets the lease of a crashed task go once it expires and its recovery grace is over, though no claim reads the job again', async () => {
    const prefix = uniquePrefix('lease');
    const coordinator = new RedisCoordinator(SHARED_REDIS_URL, prefix);
    await coordinator.connect();
    await firstValueFrom(coordinator.available$.pipe(filter(Boolean)));
    try {
      await coordinator.register([onDemand('tasks')], 'boot', 'crashed');
      await leaseTask(coordinator, 'tasks', 'crashed', 300, 42);
      expect(await redis.exists(`{${prefix}}:runs:tasks`)).toBe(1);
      // The replica holding it crashed: nothing extends, finishes or reads the lease again. It is
      // kept for its recovery (a new attempt, by a replica with the job) for RECOVERY_GRACE_MS
      // after its expiry, then it goes by itself.
      const ttl = await redis.pttl(`{${prefix}}:runs:tasks`);
      expect(ttl).toBeGreaterThan(RECOVERY_GRACE_MS);
      expect(ttl).toBeLessThanOrEqual(300 + RECOVERY_GRACE_MS);
    } finally {
      await coordinator.close();
    }
  });

  it('follows changes announced to it without a full snapshot at its next heartbeats', async () => {
    @Injectable()
    class Jobs {
      @DistributedJob({ name: 'a', every: '1h' })
      a() {}
      @DistributedJob({ name: 'b' })
      b() {}
    }
    // Watched from the boot on: the boot's own full snapshot may come after bootApp returns, and
    // must not be taken for one made because of the changes.
    const snapshots = new EventLog<string[]>();
    const snapshot = RedisCoordinator.prototype.snapshot;
    const spy = jest.spyOn(RedisCoordinator.prototype, 'snapshot').mockImplementation(function (this: RedisCoordinator, names, instanceId) {
      snapshots.push(names);
      return snapshot.call(this, names, instanceId);
    });
    const app = await bootApp({ redis: SHARED_REDIS_URL, keyPrefix: uniquePrefix('version') }, [Jobs]);
    try {
      const coordinator = app.get(Coordinator);
      await snapshots.until("the boot's full snapshot", (events) => events.some((names) => names.length === 2));
      const boot = snapshots.events.length;
      const beats = new EventLog<number>();
      const heartbeat = coordinator.heartbeat.bind(coordinator);
      coordinator.heartbeat = async (...args) => {
        const reply = await heartbeat(...args);
        beats.push(Date.now());
        return reply;
      };
      const scheduler = app.get(JobScheduler);
      await scheduler.pause('a');
      await scheduler.resume('a');
      await scheduler.trigger('b');
      await beats.until('two heartbeats after the changes', (events) => events.length >= 2, 15_000);
      const since = snapshots.events.slice(boot);
      expect(since.filter((names) => names.length === 2)).toEqual([]);
      expect(since.length).toBeGreaterThan(0);
    } finally {
      spy.mockRestore();
      await app.close();
    }
  });
});
