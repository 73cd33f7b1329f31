import { Injectable, Module } from '@nestjs/common';
import { Cron, CronExpression, CronOptions, Interval, ScheduleModule, SchedulerRegistry, Timeout } from '@nestjs/schedule';
import { Test } from '@nestjs/testing';
import { DateTime } from 'luxon';
import { DistributedJob, DistributedJobOptions, InvalidJobOptionError, JobContext, JobScheduler, SchedulerModule, SchedulerModuleOptions } from '../lib';
import { DISTRIBUTED_JOB_METADATA } from '../lib/scheduler.constants';
import { defineJob, JobDefinition } from '../lib/scheduling/job-definition';
import { fromNestSchedule, TakenOverSchedule } from '../lib/scheduling/nest-schedule.bridge';
import { TAKEN_OVER_SCHEDULE_METADATA } from '../lib/scheduling/nest-schedule.constants';
import { Schedule } from '../lib/scheduling/schedule';
import { CapturingLogger } from './support/app';
import { SHARED_REDIS_URL, TestRedisServer, uniquePrefix } from './support/redis-server';
import { EventLog } from './support/wait';

/** What the explorer makes of a method: its @DistributedJob options, with the schedule it took over. */
function definitionOf(target: Function, method: string): JobDefinition {
  const fn = target.prototype[method];
  const own = Reflect.getMetadata(DISTRIBUTED_JOB_METADATA, fn) as DistributedJobOptions;
  const taken = Reflect.getMetadata(TAKEN_OVER_SCHEDULE_METADATA, fn) as TakenOverSchedule | undefined;
  const name = `${target.name}.${method}`;
  return defineJob(taken ? fromNestSchedule(name, own, taken) : own, name);
}

/** Decorators written above `@DistributedJob()` are taken over in a microtask: let it run. */
const decorated = () => Promise.resolve();

describe('@DistributedJob on @nestjs/schedule methods', () => {
  describe('taking over the metadata', () => {
    it("removes @Cron/@Interval/@Timeout's metadata from the method, whichever decorator is written first, and keeps it", async () => {
      class Tasks {
        @Cron('45 * * * * *')
        @DistributedJob()
        cronAbove() {}

        @DistributedJob()
        @Cron('45 * * * * *')
        cronBelow() {}

        @Interval(10_000)
        @DistributedJob()
        interval() {}

        @DistributedJob()
        @Timeout(5_000)
        timeout() {}

        @Cron('45 * * * * *')
        notDistributed() {}
      }
      await decorated();
      for (const method of ['cronAbove', 'cronBelow', 'interval', 'timeout'] as const) {
        for (const key of ['SCHEDULER_TYPE', 'SCHEDULER_NAME', 'SCHEDULE_CRON_OPTIONS', 'SCHEDULE_INTERVAL_OPTIONS', 'SCHEDULE_TIMEOUT_OPTIONS']) {
          expect(Reflect.getMetadata(key, Tasks.prototype[method])).toBeUndefined();
        }
      }
      expect(definitionOf(Tasks, 'cronAbove').spec).toEqual({ cron: '45 * * * * *', jitter: 0 });
      expect(definitionOf(Tasks, 'cronBelow').spec).toEqual({ cron: '45 * * * * *', jitter: 0 });
      expect(definitionOf(Tasks, 'interval').spec).toEqual({ every: 10_000, jitter: 0 });
      expect(definitionOf(Tasks, 'timeout')).toMatchObject({ spec: null, runOnStart: true, startDelay: 5_000 });
      // A method without @DistributedJob stays @nestjs/schedule's.
      expect(Reflect.getMetadata('SCHEDULER_TYPE', Tasks.prototype.notDistributed)).toBe(1);
    });
  });

  describe('mapping the options', () => {
    it('maps name, timeZone, disabled, waitForCompletion, threshold and initialDelay of @Cron', async () => {
      class Tasks {
        @DistributedJob({ timeout: '1m' })
        @Cron(CronExpression.EVERY_30_SECONDS, { name: 'reports', timeZone: 'Europe/Paris', disabled: true, waitForCompletion: true, threshold: 500, initialDelay: 2_000 })
        run() {}
      }
      await decorated();
      expect(definitionOf(Tasks, 'run')).toMatchObject({
        name: 'reports',
        spec: { cron: '*/30 * * * * *', timeZone: 'Europe/Paris', jitter: 0 },
        paused: true,
        overlap: 'skip',
        threshold: 500,
        initialDelay: 2_000,
        timeout: 60_000,
      });
    });

    it('reads utcOffset (minutes, as cron does) as a fixed offset without daylight saving time', async () => {
      class Tasks {
        @DistributedJob()
        @Cron('0 9 * * *', { utcOffset: 330 })
        east() {}

        @DistributedJob()
        @Cron('0 9 * * *', { utcOffset: -90 })
        west() {}
      }
      await decorated();
      const east = definitionOf(Tasks, 'east').spec!;
      expect(east.timeZone).toBe('UTC+05:30');
      expect(definitionOf(Tasks, 'west').spec!.timeZone).toBe('UTC-01:30');
      // 09:00 at UTC+05:30 is 03:30 UTC, in winter as in summer.
      expect(new Date(new Schedule(east).nextBase(null, Date.parse('2026-01-10T00:00:00Z'))).toISOString()).toBe('2026-01-10T03:30:00.000Z');
      expect(new Date(new Schedule(east).nextBase(null, Date.parse('2026-07-10T00:00:00Z'))).toISOString()).toBe('2026-07-10T03:30:00.000Z');
      expect(defineJob({ name: 'n', cron: '0 9 * * *', utcOffset: 60 }, 'x').spec!.timeZone).toBe('UTC+01:00');
    });

    it('validates at, threshold, initialDelay, utcOffset and runOnStart: { delay }, naming the job, the option and the value', () => {
      const at = new Date('2030-01-01T00:00:00Z');
      expect(defineJob({ name: 'n', at }, 'x')).toMatchObject({ spec: null, at: at.getTime() });
      expect(defineJob({ name: 'n', runOnStart: { delay: '5s' } }, 'x')).toMatchObject({ runOnStart: true, startDelay: 5_000 });
      expect(defineJob({ name: 'n', every: '1m', threshold: 0, initialDelay: '30s' }, 'x')).toMatchObject({ threshold: 0, initialDelay: 30_000 });
      const refusals: [DistributedJobOptions, RegExp][] = [
        [{ at: new Date('nope') }, /option "at" has an invalid value null: expected a valid Date/],
        [{ at, every: 1_000 }, /option "at" has an invalid value "2030-01-01T00:00:00.000Z": a one-shot time excludes a "cron" or "every" schedule/],
        [{ every: 1_000, threshold: -1 }, /option "threshold" has an invalid value -1/],
        [{ threshold: 100 }, /option "threshold" has an invalid value 100: a threshold applies only to a "cron" or "every" schedule/],
        [{ at, initialDelay: 100 }, /option "initialDelay" has an invalid value 100: an initial delay applies only to a "cron" or "every" schedule/],
        [{ every: 1_000, initialDelay: 'soon' }, /option "initialDelay" has an invalid value 'soon'/],
        [{ cron: '* * * * *', utcOffset: 30.5 }, /option "utcOffset" has an invalid value 30.5: expected whole minutes/],
        [{ every: 1_000, utcOffset: 60 }, /option "utcOffset" has an invalid value 60: a UTC offset applies only to a "cron" schedule/],
        [{ runOnStart: { delay: -5 } }, /option "runOnStart" has an invalid value {"delay":-5}/],
        [{ runOnStart: 'yes' as unknown as boolean }, /option "runOnStart" has an invalid value 'yes': expected true, false or { delay }/],
      ];
      for (const [options, message] of refusals) {
        expect(() => defineJob({ name: 'n', ...options }, 'x')).toThrow(InvalidJobOptionError);
        expect(() => defineJob({ name: 'n', ...options }, 'x')).toThrow(new RegExp(`^Job "n": ${message.source}`));
      }
    });

    it('accepts every CronExpression value as a cron', () => {
      for (const cron of Object.values(CronExpression)) {
        expect(defineJob({ name: 'n', cron }, 'x').spec).toEqual({ cron, jitter: 0 });
      }
    });

    it('names the job after @Interval / @Timeout names, and maps @Cron(date) and a Luxon DateTime to a one-shot `at`', async () => {
      const when = new Date(Date.now() + 3_600_000);
      class Tasks {
        @DistributedJob()
        @Interval('sync', 2_000)
        interval() {}

        @DistributedJob({ overlap: 'allow' })
        @Timeout('warm-up', 0)
        timeout() {}

        @DistributedJob()
        @Cron(when, { threshold: 100, timeZone: 'Asia/Tokyo' })
        once() {}

        @DistributedJob()
        @Cron(DateTime.fromJSDate(when))
        onceLuxon() {}
      }
      await decorated();
      expect(definitionOf(Tasks, 'interval')).toMatchObject({ name: 'sync', spec: { every: 2_000, jitter: 0 } });
      expect(definitionOf(Tasks, 'timeout')).toMatchObject({ name: 'warm-up', runOnStart: true, startDelay: 0, overlap: 'allow' });
      // A date is an instant: its zone and threshold change nothing.
      expect(definitionOf(Tasks, 'once')).toMatchObject({ name: 'Tasks.once', spec: null, at: when.getTime(), threshold: null });
      expect(definitionOf(Tasks, 'onceLuxon')).toMatchObject({ spec: null, at: when.getTime() });
    });

    it('refuses, naming the job, the option and the value, what cannot hold across replicas or contradicts @DistributedJob', async () => {
      const past = new Date(Date.now() + 60_000);
      class Tasks {
        @DistributedJob()
        @Cron('* * * * *', { onComplete: () => undefined } as CronOptions)
        callback() {}

        @DistributedJob({ every: 1_000 })
        @Cron('* * * * *')
        twoSchedules() {}

        @DistributedJob({ name: 'mine' })
        @Cron('* * * * *', { name: 'theirs' })
        twoNames() {}

        @DistributedJob({ overlap: 'allow' })
        @Cron('* * * * *', { waitForCompletion: true })
        overlap() {}

        @DistributedJob()
        @Cron(past, { initialDelay: 1_000 })
        delayedDate() {}

        @DistributedJob()
        @Cron('0 25 * * *')
        badCron() {}

        @DistributedJob()
        @Interval(0)
        badInterval() {}

        @DistributedJob()
        @Cron('* * * * *', { timeZone: 'Europe/Paris', utcOffset: 60 } as unknown as CronOptions)
        zoneAndOffset() {}
      }
      await decorated();
      const refusal = (method: string) => {
        try {
          definitionOf(Tasks, method);
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidJobOptionError);
          return (error as Error).message;
        }
        throw new Error(`${method} was accepted`);
      };
      expect(refusal('callback')).toMatch(/^Job "Tasks.callback": option "onComplete" has an invalid value '\[function\]': @Cron\(\) option with no counterpart across replicas/);
      expect(refusal('twoSchedules')).toMatch(/^Job "Tasks.twoSchedules": option "every" has an invalid value 1000: the method also has @Cron\(\)/);
      expect(refusal('twoNames')).toMatch(/^Job "mine": option "name" has an invalid value 'theirs'/);
      expect(refusal('overlap')).toMatch(/^Job "Tasks.overlap": option "waitForCompletion" has an invalid value true: @Cron\(\) asks for overlap: "skip", @DistributedJob for "allow"/);
      expect(refusal('delayedDate')).toMatch(/^Job "Tasks.delayedDate": option "initialDelay" has an invalid value 1000/);
      expect(refusal('badCron')).toMatch(/^Job "Tasks.badCron": option "cron" has an invalid value '0 25 \* \* \*'/);
      expect(refusal('badInterval')).toMatch(/^Job "Tasks.badInterval": option "@Interval" has an invalid value 0/);
      expect(refusal('zoneAndOffset')).toMatch(/^Job "Tasks.zoneAndOffset": option "utcOffset" has an invalid value 60: "utcOffset" and "timeZone" \('Europe\/Paris'\) exclude each other/);
    });
  });

  describe('in an app', () => {
    const calls = new EventLog<{ method: string; ctx: JobContext | undefined }>();
    const called = (method: string, ctx?: JobContext) => calls.push({ method, ctx });

    @Injectable()
    class Tasks {
      @Cron(CronExpression.EVERY_SECOND)
      @DistributedJob()
      everySecond(ctx?: JobContext) {
        called('everySecond', ctx);
      }

      @DistributedJob()
      @Interval(300)
      interval(ctx?: JobContext) {
        called('interval', ctx);
      }

      @DistributedJob()
      @Timeout(200)
      once(ctx?: JobContext) {
        called('once', ctx);
      }

      // Not migrated: @nestjs/schedule keeps running it, in this process.
      @Interval('local', 100)
      local(ctx?: JobContext) {
        called('local', ctx);
      }
    }

    afterEach(() => (calls.events.length = 0));

    async function boot(withScheduleModule: boolean) {
      @Module({ imports: [...(withScheduleModule ? [ScheduleModule.forRoot()] : []), SchedulerModule.forRoot({ minPeriod: 100 })], providers: [Tasks] })
      class App {}
      const app = await Test.createTestingModule({ imports: [App] }).setLogger(new CapturingLogger()).compile();
      await app.init();
      return app;
    }

    it.each([true, false])('runs the migrated methods as distributed jobs, never as @nestjs/schedule timers (ScheduleModule imported: %s)', async (withScheduleModule) => {
      const app = await boot(withScheduleModule);
      try {
        await calls.until('two runs of everySecond, two of interval and one of once', (events) => {
          const count = (method: string) => events.filter((event) => event.method === method).length;
          return count('everySecond') >= 2 && count('interval') >= 2 && count('once') >= 1;
        });
        const migrated = calls.events.filter((event) => event.method !== 'local');
        // Every call came from this library (with a JobContext): @nestjs/schedule made none.
        expect(migrated.every((event) => event.ctx !== undefined)).toBe(true);
        expect(migrated.filter((event) => event.method === 'once').map((event) => event.ctx!.trigger)).toEqual(['EVENT']);
        expect((await app.get(JobScheduler).list()).map((job) => job.name)).toEqual(['Tasks.everySecond', 'Tasks.interval', 'Tasks.once']);
        if (withScheduleModule) {
          const registry = app.get(SchedulerRegistry);
          expect(registry.getCronJobs().size).toBe(0);
          expect(registry.getIntervals()).toEqual(['local']);
          expect(registry.getTimeouts()).toEqual([]);
          await calls.until('a call of the method left to @nestjs/schedule', (events) => events.find((event) => event.method === 'local'));
          expect(calls.events.filter((event) => event.method === 'local').every((event) => event.ctx === undefined)).toBe(true);
        }
      } finally {
        await app.close();
      }
    });
  });
});

describe.each([
  { coordinator: 'embedded', options: (): SchedulerModuleOptions => ({ minPeriod: 100 }) },
  { coordinator: 'Redis', options: (): SchedulerModuleOptions => ({ redis: SHARED_REDIS_URL, keyPrefix: uniquePrefix('threshold'), minPeriod: 100 }) },
])('threshold and initialDelay ($coordinator)', ({ options }) => {
  it('skips and counts a fire claimed later than its threshold, instead of running it late', async () => {
    const runs = new EventLog<JobContext>();
    @Injectable()
    class Jobs {
      @DistributedJob({ name: 'strict', every: 200, threshold: 80 })
      strict(ctx: JobContext) {
        runs.push(ctx);
      }
    }
    const logger = new CapturingLogger();
    const app = await Test.createTestingModule({ imports: [SchedulerModule.forRoot(options())], providers: [Jobs] }).setLogger(logger).compile();
    await app.init();
    try {
      await runs.until('a first run', (events) => events[0]);
      // Block the event loop well past the next due time: that fire is claimed late.
      const blockedUntil = Date.now() + 700;
      while (Date.now() < blockedUntil);
      const skipped = await logger.until('warn', /Job "strict": the fire due at .* was skipped: it was claimed \d+ ms late, past its threshold of 80 ms/);
      const due = Date.parse(/due at (\S+) was/.exec(skipped.message)![1]);
      expect(runs.events.some((run) => run.scheduledAt.getTime() === due)).toBe(false);
      expect((await app.get(JobScheduler).describe('strict')).skippedLate).toBeGreaterThanOrEqual(1);
      // The schedule goes on.
      await runs.until('a run after the skipped fire', (events) => events.find((run) => run.scheduledAt.getTime() > due));
    } finally {
      await app.close();
    }
  });

  it('claims no fire of a job with initialDelay before that long after the replica starts', async () => {
    const runs = new EventLog<JobContext>();
    @Injectable()
    class Jobs {
      @DistributedJob({ name: 'delayed', every: 100, initialDelay: 800 })
      delayed(ctx: JobContext) {
        runs.push(ctx);
      }
    }
    const startedAt = Date.now();
    const app = await Test.createTestingModule({ imports: [SchedulerModule.forRoot(options())], providers: [Jobs] }).setLogger(new CapturingLogger()).compile();
    await app.init();
    try {
      const first = await runs.until('a first run', (events) => events[0]);
      expect(first.startedAt.getTime() - startedAt).toBeGreaterThanOrEqual(800);
    } finally {
      await app.close();
    }
  });
});

describe('one-shots across three replicas on Redis (at, runOnStart: { delay })', () => {
  it('runs an `at` job and a delayed start run once across the replicas, and a past `at` not at all', async () => {
    const runs = new EventLog<JobContext>();
    // Far enough for three apps to boot on a loaded machine: an `at` already past when they start does not run.
    const at = new Date(Date.now() + 5_000);
    @Injectable()
    class Jobs {
      @DistributedJob({ name: 'at', at })
      once(ctx: JobContext) {
        runs.push(ctx);
      }

      @DistributedJob({ name: 'warm-up', runOnStart: { delay: 1_000 } })
      warmUp(ctx: JobContext) {
        runs.push(ctx);
      }

      @DistributedJob({ name: 'past', at: new Date(Date.now() - 1_000) })
      past(ctx: JobContext) {
        runs.push(ctx);
      }

      @DistributedJob({ name: 'clock', every: 250 })
      clock(ctx: JobContext) {
        runs.push(ctx);
      }
    }
    const keyPrefix = uniquePrefix('one-shot');
    const startedAt = Date.now();
    const loggers = [new CapturingLogger(), new CapturingLogger(), new CapturingLogger()];
    const apps = await Promise.all(
      loggers.map(async (logger, i) => {
        const app = await Test.createTestingModule({
          imports: [SchedulerModule.forRoot({ redis: SHARED_REDIS_URL, keyPrefix, instanceId: `r${i + 1}`, minPeriod: 100 })],
          providers: [Jobs],
        })
          .setLogger(logger)
          .compile();
        await app.init();
        return app;
      }),
    );
    try {
      const of = (name: string) => runs.events.filter((run) => run.name === name);
      const shot = await runs.until('the one-shot run', () => of('at')[0], 20_000);
      // Let the clock job measure 2 s more: a second run of either would have come by then.
      await runs.until('2 s of clock runs after the one-shot', () => of('clock').filter((run) => run.scheduledAt.getTime() >= shot.startedAt.getTime() + 2_000)[0], 20_000);
      expect(of('at')).toHaveLength(1);
      expect(shot.trigger).toBe('SCHEDULE');
      expect(shot.scheduledAt.getTime()).toBeGreaterThanOrEqual(at.getTime() - 50);
      expect(of('warm-up')).toHaveLength(1);
      expect(of('warm-up')[0].scheduledAt.getTime() - startedAt).toBeGreaterThanOrEqual(1_000 - 50);
      expect(of('past')).toHaveLength(0);
      // Said once by each replica (Nest's Logger is process-wide: count over all three loggers).
      const warned = loggers.reduce((sum, logger) => sum + logger.count('warn', /Job "past": its one-shot time .* has passed; it does not run/), 0);
      expect(warned).toBe(3);
    } finally {
      await Promise.all(apps.map((app) => app.close()));
    }
  });
});

describe('a one-shot due while Redis is away', () => {
  let server: TestRedisServer;
  afterEach(() => server?.stop());

  it('runs when Redis returns (empty), requested again by the replica that could not request it', async () => {
    server = await TestRedisServer.reserve();
    await server.start();
    const runs = new EventLog<JobContext>();
    const at = new Date(Date.now() + 3_000);
    @Injectable()
    class Jobs {
      @DistributedJob({ name: 'at', at })
      once(ctx: JobContext) {
        runs.push(ctx);
      }
    }
    const logger = new CapturingLogger();
    const app = await Test.createTestingModule({ imports: [SchedulerModule.forRoot({ redis: server.url, keyPrefix: uniquePrefix('one-shot-outage') })], providers: [Jobs] })
      .setLogger(logger)
      .compile();
    await app.init();
    try {
      await server.stop();
      // The outage spans the one-shot's time: wait for its request to fail, then bring Redis back.
      const scheduler = app.get(JobScheduler);
      await firstFailedRequest(scheduler);
      await server.start();
      await runs.until('the one-shot run after Redis returned', (events) => events[0], 20_000);
      expect(runs.events[0].scheduledAt.getTime()).toBeGreaterThan(at.getTime());
    } finally {
      await app.close();
    }
  });
});

/** Resolves when the scheduler reports that a one-shot could not be requested (Redis away). */
function firstFailedRequest(scheduler: JobScheduler): Promise<unknown> {
  return new Promise((resolve) => {
    const subscription = scheduler.errors$.subscribe((event) => {
      if (event.job === 'at') {
        subscription.unsubscribe();
        resolve(event);
      }
    });
  });
}
