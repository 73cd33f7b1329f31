import { Controller, Injectable, Module, Scope } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { firstValueFrom, filter } from 'rxjs';
import {
  DistributedJob,
  DuplicateJobError,
  InvalidJobOptionError,
  JobAbortedError,
  JobContext,
  JobLockedError,
  JobScheduler,
  RequestScopedJobError,
  SchedulerModule,
  UnknownJobError,
} from '../lib';
import { bootApp, CapturingLogger } from './support/app';
import { SHARED_REDIS_URL, uniquePrefix } from './support/redis-server';
import { EventLog } from './support/wait';

describe('SchedulerModule', () => {
  describe('bootstrap validation', () => {
    @Injectable()
    class BadCron {
      @DistributedJob({ name: 'nightly', cron: '0 25 * * *' })
      run() {}
    }

    @Injectable()
    class First {
      @DistributedJob({ name: 'dup', every: 1000 })
      a() {}
    }
    @Injectable()
    class Second {
      @DistributedJob({ name: 'dup', every: 2000 })
      b() {}
    }

    @Injectable({ scope: Scope.REQUEST })
    class PerRequest {
      @DistributedJob({ every: 1000 })
      tick() {}
    }

    it('fails with an error that names the job, the option and the value', async () => {
      const error = await bootApp({}, [BadCron]).catch((e) => e);
      expect(error).toBeInstanceOf(InvalidJobOptionError);
      expect(error.message).toMatch(/^Job "nightly": option "cron" has an invalid value '0 25 \* \* \*'/);
    });

    it('fails on two jobs of the same name, naming both methods', async () => {
      const error = await bootApp({}, [First, Second]).catch((e) => e);
      expect(error).toBeInstanceOf(DuplicateJobError);
      expect(error.message).toContain('First.a');
      expect(error.message).toContain('Second.b');
    });

    it('fails on a job of a request-scoped provider', async () => {
      const error = await bootApp({}, [PerRequest]).catch((e) => e);
      expect(error).toBeInstanceOf(RequestScopedJobError);
      expect(error.message).toContain('Job "PerRequest.tick"');
    });

    it('fails in production without Redis unless the embedded coordinator is allowed', async () => {
      const previous = process.env.NODE_ENV;
      process.env.NODE_ENV = 'production';
      try {
        await expect(bootApp({}, [])).rejects.toThrow(/NODE_ENV is "production" and no `redis` option is set/);
        const app = await bootApp({ allowEmbedded: true }, []);
        expect(app.get(JobScheduler).mode).toBe('embedded');
        await app.close();
      } finally {
        process.env.NODE_ENV = previous;
      }
    });
  });

  describe('on the embedded coordinator', () => {
    const runs = new EventLog<JobContext>();

    @Injectable()
    class Jobs {
      @DistributedJob({ name: 'fast', every: 100 })
      fast(ctx: JobContext) {
        runs.push(ctx);
      }

      @DistributedJob({ name: 'on-demand' })
      onDemand(ctx: JobContext) {
        runs.push(ctx);
      }

      @DistributedJob({ name: 'slow', timeout: 100 })
      async slow(ctx: JobContext) {
        runs.push(ctx);
        await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
      }

      @DistributedJob({ name: 'failing' })
      failing() {
        throw new Error('out of cheese');
      }

      @DistributedJob({ name: 'endless' })
      async endless(ctx: JobContext) {
        runs.push(ctx);
        await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
      }
    }

    let app: Awaited<ReturnType<typeof bootApp>>;
    let scheduler: JobScheduler;
    const logger = new CapturingLogger();

    beforeAll(async () => {
      app = await bootApp({ shutdownTimeout: 200, minPeriod: 100 }, [Jobs], logger);
      scheduler = app.get(JobScheduler);
    });

    afterAll(() => app?.close());

    it('logs which mode runs', () => {
      expect(scheduler.mode).toBe('embedded');
      expect(logger.count('log', /Running 5 job\(s\) on the embedded coordinator/)).toBe(1);
    });

    it('runs a scheduled job once per due time, with its context', async () => {
      const fast = await runs.until('three runs of fast', (events) => {
        const mine = events.filter((ctx) => ctx.name === 'fast');
        return mine.length >= 3 && mine;
      });
      for (let i = 1; i < fast.length; i++) {
        expect(fast[i].scheduledAt.getTime() - fast[i - 1].scheduledAt.getTime()).toBe(100);
        expect(fast[i].fencingToken).toBeGreaterThan(fast[i - 1].fencingToken);
      }
      for (const ctx of fast) {
        expect(ctx.startedAt.getTime()).toBeGreaterThanOrEqual(ctx.scheduledAt.getTime());
        expect(ctx).toMatchObject({ trigger: 'SCHEDULE', instanceId: scheduler.instanceId });
        expect(ctx.signal.aborted).toBe(false);
      }
    });

    it('runs an on-demand job when triggered, once per trigger', async () => {
      await scheduler.trigger('on-demand');
      const ctx = await runs.until('the triggered run', (events) => events.find((c) => c.name === 'on-demand'));
      expect(ctx.trigger).toBe('MANUAL');
      await expect(scheduler.trigger('no-such-job')).rejects.toThrow(UnknownJobError);
    });

    it('aborts a run at its timeout and records it as timed out', async () => {
      await scheduler.trigger('slow');
      const ctx = await runs.until('the slow run', (events) => events.find((c) => c.name === 'slow'));
      await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
      expect(ctx.signal.reason).toBeInstanceOf(JobAbortedError);
      expect(ctx.signal.reason.kind).toBe('timeout');
      const described = await waitForLastRun(scheduler, 'slow');
      expect(described.lastRun).toMatchObject({ status: 'timeout', error: expect.stringContaining('timeout of 100 ms') });
    });

    it('offers handler errors on errors$ and records them', async () => {
      const reported = firstValueFrom(scheduler.errors$.pipe(filter((event) => event.job === 'failing')));
      await scheduler.trigger('failing');
      expect(await reported).toMatchObject({ phase: 'run', job: 'failing', error: expect.objectContaining({ message: 'out of cheese' }) });
      expect((await waitForLastRun(scheduler, 'failing')).lastRun).toMatchObject({ status: 'error', error: 'out of cheese' });
    });

    it('pauses, resumes and reschedules', async () => {
      await scheduler.pause('fast');
      expect(await scheduler.describe('fast')).toMatchObject({ paused: true, nextRunAt: null });
      await scheduler.updateSchedule('fast', { every: '1h' });
      expect(await scheduler.describe('fast')).toMatchObject({ paused: true, schedule: { every: 3_600_000 }, scheduleOverridden: true });
      const before = Date.now();
      await scheduler.resume('fast');
      const described = await scheduler.describe('fast');
      expect(described.paused).toBe(false);
      expect(described.nextRunAt!.getTime()).toBeGreaterThanOrEqual(before + 3_600_000);
      const preview = await scheduler.preview('fast', 3);
      expect(preview.map((d) => d.getTime() - preview[0].getTime())).toEqual([0, 3_600_000, 7_200_000]);
      await expect(scheduler.updateSchedule('fast', { cron: 'every day' })).rejects.toThrow(InvalidJobOptionError);
      await expect(scheduler.updateSchedule('fast', {})).rejects.toThrow(/updateSchedule needs "cron" or "every"/);
      await expect(scheduler.updateSchedule('on-demand', { jitter: 0.1 })).rejects.toThrow(/an on-demand job has no schedule to change/);
    });

    it('locks a job by hand, and refuses to while it runs', async () => {
      await scheduler.trigger('endless');
      await runs.until('the endless run', (events) => events.find((c) => c.name === 'endless'));
      await expect(scheduler.lock('endless')).rejects.toThrow(JobLockedError);
      await scheduler.lock('on-demand', { holder: 'ops' });
      expect((await scheduler.describe('on-demand')).locked).toEqual({ by: 'ops', until: null });
      await scheduler.unlock('on-demand');
      expect((await scheduler.describe('on-demand')).locked).toBeNull();
    });

    it('lists every job', async () => {
      expect((await scheduler.list()).map((job) => job.name)).toEqual(['endless', 'failing', 'fast', 'on-demand', 'slow']);
    });

    it('aborts runs that outlast shutdownTimeout when the app closes', async () => {
      // Its own run of 'endless' (or the one already going: overlap 'skip' keeps one).
      await scheduler.trigger('endless');
      const endless = await runs.until('a run of endless', (events) => events.find((c) => c.name === 'endless' && !c.signal.aborted));
      expect(endless.signal.aborted).toBe(false);
      await app.close();
      expect(endless.signal.aborted).toBe(true);
      expect(endless.signal.reason.kind).toBe('shutdown');
    });
  });

  describe('discovery', () => {
    it('finds jobs on controllers as well as on providers', async () => {
      @Controller()
      class StatusController {
        @DistributedJob({ name: 'controller-job', every: '1h' })
        refresh() {}
      }
      const moduleRef = await Test.createTestingModule({ imports: [SchedulerModule.forRoot({})], controllers: [StatusController] })
        .setLogger(new CapturingLogger())
        .compile();
      await moduleRef.init();
      try {
        expect((await moduleRef.get(JobScheduler).list()).map((job) => job.name)).toEqual(['controller-job']);
      } finally {
        await moduleRef.close();
      }
    });
  });

  describe('forRootAsync', () => {
    it('reads its options from a factory with injected dependencies', async () => {
      @Injectable()
      class Config {
        readonly instanceId = 'from-config';
      }
      @Module({ providers: [Config], exports: [Config] })
      class ConfigModule {}

      const moduleRef = await Test.createTestingModule({
        imports: [
          SchedulerModule.forRootAsync({
            imports: [ConfigModule],
            inject: [Config],
            useFactory: (config: Config) => ({ instanceId: config.instanceId }),
          }),
        ],
      })
        .setLogger(new CapturingLogger())
        .compile();
      await moduleRef.init();
      expect(moduleRef.get(JobScheduler).instanceId).toBe('from-config');
      await moduleRef.close();
    });
  });

  describe('on Redis, two apps in one process', () => {
    const runs = new EventLog<JobContext>();

    @Injectable()
    class StartJobs {
      @DistributedJob({ name: 'warm-up', runOnStart: true })
      warmUp(ctx: JobContext) {
        runs.push(ctx);
      }

      @DistributedJob({ name: 'replaceable', overlap: 'cancel-previous' })
      async replaceable(ctx: JobContext) {
        runs.push(ctx);
        await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
      }
    }

    it('runs a runOnStart job once for replicas that start together, and cancels a previous run', async () => {
      const keyPrefix = uniquePrefix('module');
      const apps = await Promise.all(['a', 'b'].map((id) => bootApp({ redis: SHARED_REDIS_URL, keyPrefix, instanceId: id, shutdownTimeout: 200 }, [StartJobs])));
      try {
        const warmUp = await runs.until('the start run', (events) => events.find((c) => c.name === 'warm-up'));
        expect(warmUp.trigger).toBe('EVENT');

        const scheduler = apps[0].get(JobScheduler);
        await scheduler.trigger('replaceable');
        const first = await runs.until('the first run', (events) => events.find((c) => c.name === 'replaceable'));
        await scheduler.trigger('replaceable');
        const second = await runs.until('the second run', (events) => events.filter((c) => c.name === 'replaceable')[1]);
        await new Promise((resolve) => (first.signal.aborted ? resolve(null) : first.signal.addEventListener('abort', resolve)));
        expect(first.signal.reason.kind).toBe('cancelled');
        expect(second.fencingToken).toBeGreaterThan(first.fencingToken);
        // Both apps have started: nothing else ran the start job.
        expect(runs.events.filter((c) => c.name === 'warm-up')).toHaveLength(1);
      } finally {
        await Promise.all(apps.map((app) => app.close()));
      }
    });
  });
});

describe('a rolling deploy', () => {
  @Injectable()
  class OldCode {
    @DistributedJob({ name: 'report', every: '1h' })
    report() {}
  }

  @Injectable()
  class NewCode {
    @DistributedJob({ name: 'report', every: '2h' })
    report() {}
  }

  it('puts the newest replica’s definition in force, and both sides log both definitions', async () => {
    const keyPrefix = uniquePrefix('deploy');
    // Nest's Logger is process-wide, so both apps log into one capture.
    const logger = new CapturingLogger();
    const oldApp = await bootApp({ redis: SHARED_REDIS_URL, keyPrefix, instanceId: 'old' }, [OldCode], logger);
    const newApp = await bootApp({ redis: SHARED_REDIS_URL, keyPrefix, instanceId: 'new' }, [NewCode], logger);
    try {
      const oldDefinition = '{"spec":{"every":3600000,"jitter":0},"overlap":"skip","paused":false}';
      const newDefinition = '{"spec":{"every":7200000,"jitter":0},"overlap":"skip","paused":false}';
      expect((await logger.until('warn', /replaces/)).message).toBe(
        `Job "report": this instance's definition ${newDefinition} replaces ${oldDefinition}, registered by "old". ` +
          'The most recently started replica wins; replicas on the older code follow the new one.',
      );
      const described = await oldApp.get(JobScheduler).describe('report');
      expect(described).toMatchObject({ schedule: { every: 7_200_000 }, definedBy: 'new' });
      // The old replica hears of the change and says what it follows now.
      const followed = await logger.until('warn', /differs from this instance's/);
      expect(followed.message).toBe(
        `Job "report": the definition in force, ${newDefinition}, registered by "new", differs from this instance's ` +
          `${oldDefinition}. Following it: the most recently started replica's definition wins.`,
      );
    } finally {
      await Promise.all([oldApp.close(), newApp.close()]);
    }
  });
});

async function waitForLastRun(scheduler: JobScheduler, name: string) {
  for (;;) {
    const described = await scheduler.describe(name);
    if (described.lastRun?.finishedAt) return described;
    await new Promise((resolve) => setImmediate(resolve));
  }
}
