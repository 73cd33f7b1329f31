import { Injectable } from '@nestjs/common';
import {
  CoordinatorUnavailableError,
  DistributedJob,
  InvalidJobOptionError,
  JobContext,
  JobScheduler,
  TooManyTriggersError,
  TriggerReceipt,
} from '../lib';
import { MAX_PENDING_TRIGGERS } from '../lib/coordination/coordinator.interface';
import { bootApp, CapturingLogger } from './support/app';
import { SHARED_REDIS_URL, TestRedisServer, uniquePrefix } from './support/redis-server';
import { EventLog } from './support/wait';

/** What a user of `JobScheduler` sees: receipts, bounds, the audit trail, and the words of its messages. */
describe('runtime controls', () => {
  describe('on the embedded coordinator', () => {
    const runs = new EventLog<JobContext>();
    /** Ends the current run of `guarded` when called. */
    let release: () => void = () => undefined;

    @Injectable()
    class Jobs {
      @DistributedJob({ name: 'guarded' })
      async guarded(ctx: JobContext) {
        runs.push(ctx);
        await new Promise<void>((resolve) => (release = resolve));
      }

      @DistributedJob({ name: 'tick', every: '1h', jitter: 0.25 })
      tick() {}
    }

    let app: Awaited<ReturnType<typeof bootApp>>;
    let scheduler: JobScheduler;
    const logger = new CapturingLogger();
    const audit = (pattern: string) => logger.lines.filter((line) => line.level === 'log' && line.message.includes(pattern)).map((line) => line.message);

    beforeAll(async () => {
      app = await bootApp({ instanceId: 'ops-console', shutdownTimeout: 200 }, [Jobs], logger);
      scheduler = app.get(JobScheduler);
    });

    afterAll(() => app?.close());

    it('answers a trigger with a receipt: accepted, or skipped with the reason, and logs it once as a control', async () => {
      const accepted = await scheduler.trigger('guarded');
      expect(accepted).toEqual({ id: expect.any(String), job: 'guarded', status: 'accepted', requestedAt: expect.any(Date) });
      await runs.until('the triggered run', (events) => events.length === 1);

      const whileRunning = await scheduler.trigger('guarded', { id: 'retry-safe-1' });
      expect(whileRunning).toEqual({ id: 'retry-safe-1', job: 'guarded', status: 'skipped', reason: 'running', holder: 'ops-console', requestedAt: expect.any(Date) });
      // Sent again (a client retrying): the same answer, and still no second run.
      expect(await scheduler.trigger('guarded', { id: 'retry-safe-1' })).toEqual(whileRunning);
      release();
      await waitForLastRun(scheduler, 'guarded');

      await scheduler.lock('guarded', { holder: 'deploy' });
      expect(await scheduler.trigger('guarded')).toMatchObject({ status: 'skipped', reason: 'locked', holder: 'deploy' });
      await scheduler.unlock('guarded');
      expect(runs.events).toHaveLength(1);

      expect(audit(`trigger ${accepted.id} accepted`)).toEqual([`Job "guarded": triggered, trigger ${accepted.id} accepted (control by instance "ops-console").`]);
      expect(audit('trigger retry-safe-1 skipped')[0]).toBe(
        `Job "guarded": triggered, trigger retry-safe-1 skipped: a run is still going on instance "ops-console" (overlap: 'skip') (control by instance "ops-console").`,
      );
      await expect(scheduler.trigger('guarded', { id: 'two\nlines' })).rejects.toThrow(InvalidJobOptionError);
      // The library's own ids: a dispatched task, a pending retry.
      await expect(scheduler.trigger('guarded', { id: 'task:42' })).rejects.toThrow(/Job "guarded": option "id" .*task:42.*a dispatched task/s);
    });

    it('logs a trigger accepted but skipped when claimed as a trigger, with its id, not as a scheduled fire', async () => {
      // Both are accepted (nothing runs yet); the claim that takes both runs one and skips the other.
      const before = runs.events.length;
      const receipts: TriggerReceipt[] = await Promise.all([scheduler.trigger('guarded'), scheduler.trigger('guarded')]);
      expect(receipts.map((receipt) => receipt.status)).toEqual(['accepted', 'accepted']);
      const ids = receipts.map((receipt) => receipt.id).join('|');
      const skipped = await logger.until('warn', new RegExp(`Job "guarded": the manual trigger (${ids}) requested at \\S+ was skipped: a run is still going`));
      expect(skipped.message).not.toMatch(/fire due at/);
      await runs.until('the run of the other trigger', (events) => events.length === before + 1);
      release();
      await waitForLastRun(scheduler, 'guarded');
    });

    it('keeps the fields updateSchedule was not given, and logs the change once', async () => {
      await scheduler.updateSchedule('tick', { every: '2h' });
      expect((await scheduler.describe('tick')).schedule).toEqual({ every: 7_200_000, jitter: 0.25 });
      await scheduler.updateSchedule('tick', { jitter: 0 });
      expect((await scheduler.describe('tick')).schedule).toEqual({ every: 7_200_000, jitter: 0 });
      expect(audit('schedule changed')).toEqual([
        expect.stringMatching(/^Job "tick": schedule changed from \{"every":3600000,"jitter":0.25\} to \{"every":7200000,"jitter":0.25\}; next run at \S+Z \(control by instance "ops-console"\)\.$/),
        expect.stringContaining('to {"every":7200000,"jitter":0}'),
      ]);
    });

    it('refuses a period outside the bounds on updateSchedule, leaving the schedule as it was', async () => {
      const before = await scheduler.describe('tick');
      const tooOften = await scheduler.updateSchedule('tick', { every: 1 }).catch((error) => error);
      expect(tooOften).toBeInstanceOf(InvalidJobOptionError);
      expect(tooOften.message).toBe(
        'Job "tick": option "every" has an invalid value 1: a period below the minimum of 1 s (module option "minPeriod") would load every replica and Redis',
      );
      await expect(scheduler.updateSchedule('tick', { every: 1e300 })).rejects.toThrow(/above the maximum of 366 days/);
      expect(await scheduler.describe('tick')).toMatchObject({ schedule: before.schedule, nextRunAt: before.nextRunAt });
    });

    it('logs pause, resume, reset, lock and unlock once each, with the job, the change and the instance', async () => {
      await scheduler.pause('tick');
      await scheduler.resume('tick');
      await scheduler.resume('tick'); // not paused: nothing changes, nothing is logged
      await scheduler.reset('tick');
      await scheduler.lock('tick', { ttl: '1m' });
      await scheduler.unlock('tick');
      await scheduler.unlock('tick'); // not locked: nothing to log
      const lines = logger.lines.filter((line) => line.message.startsWith('Job "tick"') && line.message.endsWith('(control by instance "ops-console").'));
      expect(lines.slice(-5).map((line) => line.message.replace(/\d{4}-\d\d-\d\dT\S+Z/, '<time>'))).toEqual([
        'Job "tick": paused (control by instance "ops-console").',
        'Job "tick": resumed; next run at <time> (control by instance "ops-console").',
        'Job "tick": reset; next run at <time> (control by instance "ops-console").',
        'Job "tick": locked by "ops-console" for 60000 ms (control by instance "ops-console").',
        'Job "tick": unlocked (it was locked by "ops-console") (control by instance "ops-console").',
      ]);
    });

    it('previews at most 1,000 due times, and says so with a RangeError beyond', async () => {
      const error = await scheduler.preview('tick', 100_000).catch((e) => e);
      expect(error).toBeInstanceOf(RangeError);
      expect(error.message).toBe('Job "tick": preview count 100000 is out of range: expected a whole number from 0 to 1000.');
      await expect(scheduler.preview('tick', -1)).rejects.toThrow(RangeError);
      await expect(scheduler.preview('tick', 2.5)).rejects.toThrow(RangeError);
      const times = await scheduler.preview('tick', 1_000);
      expect(times).toHaveLength(1_000);
      expect(times[999].getTime() - times[0].getTime()).toBe(999 * 7_200_000);
      expect(await scheduler.preview('tick', 0)).toEqual([]);
    });

    it('says in seconds how long shutdown waits for running jobs', async () => {
      const before = runs.events.length;
      await scheduler.trigger('guarded');
      await runs.until('a run to outlast shutdown', (events) => events.length === before + 1);
      await app.close();
      expect((await logger.until('log', /^Shutting down/)).message).toBe(
        'Shutting down: waiting up to 0.2 s for 1 running job(s) to finish (guarded); the ones still running then are aborted.',
      );
    });
  });

  describe('on Redis', () => {
    @Injectable()
    class Piled {
      @DistributedJob({ name: 'piled' })
      piled() {}
    }

    it('names the key prefix at startup, and refuses triggers beyond the cap of pending ones', async () => {
      const keyPrefix = uniquePrefix('controls');
      const logger = new CapturingLogger();
      // The job's only replica registers it and goes away: its triggers stay pending.
      const owner = await bootApp({ redis: SHARED_REDIS_URL, keyPrefix, instanceId: 'owner' }, [Piled], logger);
      expect(logger.lines.find((line) => line.message.startsWith('Coordinating'))?.message).toBe(
        `Coordinating 1 job(s) on Redis at 127.0.0.1:6379 under key prefix "${keyPrefix}" as instance "owner".`,
      );
      await owner.close();
      const other = await bootApp({ redis: SHARED_REDIS_URL, keyPrefix, instanceId: 'other' }, [], logger);
      try {
        const scheduler = other.get(JobScheduler);
        for (let i = 0; i < MAX_PENDING_TRIGGERS; i++) expect((await scheduler.trigger('piled')).status).toBe('accepted');
        const error = await scheduler.trigger('piled').catch((e) => e);
        expect(error).toBeInstanceOf(TooManyTriggersError);
        expect(error.message).toMatch(/^Job "piled": already 100 pending triggers, the most one job may have \(100\); this trigger was refused\./);
        expect((await scheduler.describe('piled')).pendingTriggers).toBe(MAX_PENDING_TRIGGERS);
      } finally {
        await other.close();
      }
    });

    it('says in plain words that Redis is unreachable, keeping the client’s error as the cause', async () => {
      const server = await TestRedisServer.reserve();
      await server.start();
      const logger = new CapturingLogger();
      const app = await bootApp({ redis: server.url, keyPrefix: uniquePrefix('away') }, [Piled], logger);
      try {
        await server.stop();
        await logger.until('error', /is unreachable/);
        const error = await app.get(JobScheduler).pause('piled').catch((e) => e);
        expect(error).toBeInstanceOf(CoordinatorUnavailableError);
        expect(error.message).toBe(
          `The scheduler cannot reach Redis at 127.0.0.1:${server.port}: it is not connected right now, and reconnects in the background. ` +
            'If the call reached it before the connection dropped, it may have taken effect: `describe()` tells, ' +
            'once it is reachable again, before you repeat it.',
        );
        expect(error.cause).toBeInstanceOf(Error);
        expect(error.cause.message).not.toBe('');
      } finally {
        await app.close();
        await server.stop();
      }
    });
  });
});

async function waitForLastRun(scheduler: JobScheduler, name: string) {
  for (;;) {
    const described = await scheduler.describe(name);
    if (described.lastRun?.finishedAt && described.running.length === 0) return described;
    await new Promise((resolve) => setImmediate(resolve));
  }
}
