import { Injectable, INestApplicationContext, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { filter, firstValueFrom } from 'rxjs';
import { CoordinatorUnavailableError, DistributedJob, JobContext, JobScheduler, SchedulerModule, SchedulerModuleOptions, SchedulerOptionsFactory } from '../lib';
import { Coordinator } from '../lib/coordination/coordinator.interface';
import { RedisCoordinator } from '../lib/coordination/redis/redis.coordinator';
import { bootApp, CapturingLogger } from './support/app';
import { SHARED_REDIS_URL, TestRedisServer, uniquePrefix } from './support/redis-server';
import { EventLog } from './support/wait';

/**
 * Runtime controls and lifecycle, each test on an app (and a key prefix) of its own, so none
 * depends on what another left behind. On Redis unless said otherwise: it is what production runs.
 */
const runs = new EventLog<JobContext>();
const ofJob = (name: string, events: JobContext[]) => events.filter((ctx) => ctx.name === name);

/** Holds a handler until the test opens it. */
class Latch {
  private opened!: () => void;
  readonly open = new Promise<void>((resolve) => (this.opened = resolve));
  release(): void {
    this.opened();
  }
}
let latch = new Latch();

const apps: INestApplicationContext[] = [];
async function boot(options: SchedulerModuleOptions, providers: Parameters<typeof bootApp>[1], logger = new CapturingLogger()) {
  const app = await bootApp({ redis: SHARED_REDIS_URL, minPeriod: 100, ...options }, providers, logger);
  apps.push(app);
  return app;
}

beforeEach(() => (latch = new Latch()));
afterEach(async () => {
  latch.release();
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

/** Resolves once the local clock has passed `at` (for assertions on due times computed from now). */
async function clockPast(at: number): Promise<void> {
  while (Date.now() <= at) await new Promise((resolve) => setTimeout(resolve, Math.max(1, at - Date.now() + 1)));
}

async function lastRunEnded(scheduler: JobScheduler, name: string, fencingToken?: number) {
  for (let i = 0; ; i++) {
    const described = await scheduler.describe(name);
    const lastRun = described.lastRun;
    if (lastRun?.finishedAt && (fencingToken === undefined || lastRun.fencingToken === fencingToken)) return described;
    if (i > 3_000) throw new Error(`Job "${name}" has no finished run`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('runtime controls', () => {
  @Injectable()
  class HourlyJobs {
    @DistributedJob({ name: 'hourly', every: '1h' })
    hourly(ctx: JobContext) {
      runs.push(ctx);
    }
  }

  it('reset() moves the next fire to now + period', async () => {
    const app = await boot({ keyPrefix: uniquePrefix('reset') }, [HourlyJobs]);
    const scheduler = app.get(JobScheduler);
    const before = (await scheduler.describe('hourly')).nextRunAt!.getTime();
    await clockPast(before - 3_600_000 + 200);
    const resetAt = Date.now();
    await scheduler.reset('hourly');
    const after = (await scheduler.describe('hourly')).nextRunAt!.getTime();
    expect(after).toBeGreaterThanOrEqual(resetAt + 3_600_000);
    expect(after).toBeGreaterThan(before);
    await expect(scheduler.reset('no-such-job')).rejects.toThrow(/no-such-job/);
  });

  it('a manual trigger that runs restarts the period from its run', async () => {
    const app = await boot({ keyPrefix: uniquePrefix('restart') }, [HourlyJobs]);
    const scheduler = app.get(JobScheduler);
    const before = (await scheduler.describe('hourly')).nextRunAt!.getTime();
    await clockPast(before - 3_600_000 + 200);
    const receipt = await scheduler.trigger('hourly');
    expect(receipt.status).toBe('accepted');
    const ctx = await runs.until('the manual run', (events) => events.find((c) => c.name === 'hourly' && c.trigger === 'MANUAL' && c.instanceId === scheduler.instanceId && c.scheduledAt.getTime() >= receipt.requestedAt.getTime()));
    await lastRunEnded(scheduler, 'hourly', ctx.fencingToken);
    const after = (await scheduler.describe('hourly')).nextRunAt!.getTime();
    expect(after).toBeGreaterThanOrEqual(before + 200);
  });

  it('a manual lock with a ttl expires: fires are skipped while it holds, and run after', async () => {
    const app = await boot({ keyPrefix: uniquePrefix('lock-ttl') }, [HourlyJobs]);
    const scheduler = app.get(JobScheduler);
    const lockedAt = Date.now();
    await scheduler.lock('hourly', { ttl: 800, holder: 'ops' });
    const { locked } = await scheduler.describe('hourly');
    expect(locked!.by).toBe('ops');
    expect(locked!.until).not.toBeNull();
    expect(locked!.until!.getTime()).toBeGreaterThanOrEqual(lockedAt + 800 - 1_000);
    expect(locked!.until!.getTime()).toBeLessThanOrEqual(Date.now() + 800 + 1_000);
    expect(await scheduler.trigger('hourly')).toMatchObject({ status: 'skipped', reason: 'locked', holder: 'ops' });
    await clockPast(locked!.until!.getTime() + 50);
    const receipt = await scheduler.trigger('hourly');
    expect(receipt.status).toBe('accepted');
    await runs.until('the run after the lock expired', (events) => events.find((c) => c.name === 'hourly' && c.scheduledAt.getTime() >= receipt.requestedAt.getTime()));
  });

  it('ping() measures a round trip to the coordinator, and says when it is unreachable', async () => {
    const redis = await TestRedisServer.reserve();
    await redis.start();
    try {
      const app = await boot({ redis: redis.url, keyPrefix: uniquePrefix('ping') }, []);
      const scheduler = app.get(JobScheduler);
      const rtt = await scheduler.ping();
      expect(typeof rtt).toBe('number');
      expect(rtt).toBeGreaterThan(0);
      await redis.stop();
      await expect(scheduler.ping()).rejects.toBeInstanceOf(CoordinatorUnavailableError);
    } finally {
      await redis.stop();
    }
    const embedded = await bootApp({ minPeriod: 100 }, []);
    apps.push(embedded);
    expect(await embedded.get(JobScheduler).ping()).toBeGreaterThanOrEqual(0);
  });
});

describe('jitter on Redis', () => {
  @Injectable()
  class JitteredJobs {
    @DistributedJob({ name: 'jittered', every: 300, jitter: 0.3 })
    jittered(ctx: JobContext) {
      runs.push(ctx);
    }
  }

  it('delays each fire within its period without moving the cadence', async () => {
    const app = await boot({ keyPrefix: uniquePrefix('jitter') }, [JitteredJobs]);
    const scheduler = app.get(JobScheduler);
    // The base of the fire pending now: every base of the job is this one plus whole periods.
    const [base] = await scheduler.preview('jittered', 1);
    const seen = runs.events.length;
    const fires = await runs.until('eight jittered fires', (events) => {
      const mine = ofJob('jittered', events.slice(seen)).filter((c) => c.trigger === 'SCHEDULE');
      return mine.length >= 8 && mine;
    });
    const offsets = fires.map((ctx) => (((ctx.scheduledAt.getTime() - base.getTime()) % 300) + 300) % 300);
    for (const offset of offsets) expect(offset).toBeLessThan(300 * 0.3);
    // Jitter is drawn: not every fire is on its base.
    expect(new Set(offsets).size).toBeGreaterThan(1);
  });
});

describe('registration', () => {
  @Injectable()
  class ReportJobs {
    @DistributedJob({ name: 'report', every: '1h' })
    report() {}
  }

  it('a restart of the same code on another instance keeps a schedule changed at runtime', async () => {
    const keyPrefix = uniquePrefix('same-code');
    const first = await boot({ keyPrefix, instanceId: 'first' }, [ReportJobs]);
    await first.get(JobScheduler).updateSchedule('report', { every: '2h' });
    await first.close();
    apps.splice(apps.indexOf(first), 1);

    const logger = new CapturingLogger();
    const second = await boot({ keyPrefix, instanceId: 'second' }, [ReportJobs], logger);
    expect(await second.get(JobScheduler).describe('report')).toMatchObject({ schedule: { every: 7_200_000 }, scheduleOverridden: true, definedBy: 'first' });
    expect(logger.count('warn', /replaces/)).toBe(0);
  });

  @Injectable()
  class StartJobs {
    @DistributedJob({ name: 'warm-up', runOnStart: true })
    warmUp(ctx: JobContext) {
      runs.push(ctx);
    }
  }

  it('runs the start run once for replicas that start within a minute of each other, even one after the other', async () => {
    const keyPrefix = uniquePrefix('start-window');
    const seen = runs.events.length;
    const first = await boot({ keyPrefix, instanceId: 'first' }, [StartJobs]);
    const firstScheduler = first.get(JobScheduler);
    const started = await runs.until('the start run', (events) => events.slice(seen).find((c) => c.name === 'warm-up'));
    await lastRunEnded(firstScheduler, 'warm-up', started.fencingToken);

    // The second replica's start request, observed (not replaced) on its coordinator.
    const requests = new EventLog<string>();
    const second = await Test.createTestingModule({ imports: [SchedulerModule.forRoot({ redis: SHARED_REDIS_URL, keyPrefix, instanceId: 'second', autoStart: false })], providers: [StartJobs] })
      .setLogger(new CapturingLogger())
      .compile();
    await second.init();
    apps.push(second);
    const coordinator = second.get(Coordinator);
    const requestTrigger = coordinator.requestTrigger.bind(coordinator);
    coordinator.requestTrigger = async (...args) => {
      const outcome = await requestTrigger(...args);
      requests.push(`${args[0]} ${args[2]} ${outcome.status}`);
      return outcome;
    };
    await second.get(JobScheduler).start();
    await requests.until("the second replica's start request", (events) => events.find((line) => line.startsWith('warm-up start')));
    // Nothing pending and nothing running: a run of that request would have happened by now.
    for (let i = 0; ; i++) {
      const described = await firstScheduler.describe('warm-up');
      if (described.pendingTriggers === 0 && described.running.length === 0) break;
      if (i > 3_000) throw new Error('the start request never settled');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(ofJob('warm-up', runs.events.slice(seen))).toHaveLength(1);
  });

  it('with autoStart: false, registers and runs nothing until start()', async () => {
    const keyPrefix = uniquePrefix('auto-start');
    const seen = runs.events.length;
    const idle = await boot({ keyPrefix, instanceId: 'idle', autoStart: false }, [StartJobs]);
    const observer = await boot({ keyPrefix, instanceId: 'observer' }, []);
    expect(await observer.get(JobScheduler).list()).toEqual([]);
    await idle.get(JobScheduler).start();
    expect((await observer.get(JobScheduler).list()).map((job) => job.name)).toEqual(['warm-up']);
    const ctx = await runs.until('the start run after start()', (events) => events.slice(seen).find((c) => c.name === 'warm-up'));
    expect(ctx.instanceId).toBe('idle');
  });
});

describe('a claim whose reply was lost', () => {
  @Injectable()
  class Adoptable {
    @DistributedJob({ name: 'adoptable', every: '1h' })
    adoptable(ctx: JobContext) {
      runs.push(ctx);
    }
  }

  it('still runs: the replica that holds the lease runs the fire', async () => {
    const keyPrefix = uniquePrefix('adopt');
    const app = await boot({ keyPrefix, instanceId: 'a', lockTtl: '30s' }, [Adoptable]);
    // The replica's claim, made for it by another connection: the replica never sees its reply.
    const lost = new RedisCoordinator(SHARED_REDIS_URL, keyPrefix);
    await lost.connect();
    await firstValueFrom(lost.available$.pipe(filter(Boolean)));
    try {
      const [record] = await lost.describe(['adoptable']);
      const now = Date.now();
      const next = { base: now + 3_600_000, due: now + 3_600_000 };
      // Sent together: Redis runs the claim before the replica can react to the change.
      const [, [claim]] = await Promise.all([
        lost.reschedule('adoptable', { rev: record.rev, next: { base: now - 1, due: now - 1 } }),
        lost.claim([{ name: 'adoptable', rev: record.rev, due: now - 1, next }], 'a', 30_000),
      ]);
      expect(claim.status).toBe('claimed');
      const token = (claim as { fencingToken: number }).fencingToken;
      const ctx = await runs.until('the fire claimed for the replica', (events) => events.find((c) => c.name === 'adoptable' && c.fencingToken === token));
      expect(ctx.instanceId).toBe('a');
      expect((await lastRunEnded(app.get(JobScheduler), 'adoptable', token)).lastRun!.status).toBe('success');
    } finally {
      await lost.close();
    }
  });
});

describe('handlers and shutdown', () => {
  let ignoringReturned = new EventLog<number>();

  @Injectable()
  class SlowJobs {
    @DistributedJob({ name: 'ignores-signal', timeout: 200 })
    async ignoresSignal(ctx: JobContext) {
      runs.push(ctx);
      await latch.open;
      ignoringReturned.push(Date.now());
    }

    @DistributedJob({ name: 'finishes' })
    async finishes(ctx: JobContext) {
      runs.push(ctx);
      await latch.open;
    }
  }

  it('ends a run whose handler ignores its signal at the abort, and warns when the handler returns', async () => {
    ignoringReturned = new EventLog<number>();
    const logger = new CapturingLogger();
    const app = await boot({ keyPrefix: uniquePrefix('ignores') }, [SlowJobs], logger);
    const scheduler = app.get(JobScheduler);
    await scheduler.trigger('ignores-signal');
    const ctx = await runs.until('the run', (events) => events.find((c) => c.name === 'ignores-signal' && c.instanceId === scheduler.instanceId && !c.signal.aborted));
    // The run is over (its lease released) while the handler is still going.
    const described = await lastRunEnded(scheduler, 'ignores-signal', ctx.fencingToken);
    expect(described.lastRun).toMatchObject({ status: 'timeout' });
    expect(described.running).toEqual([]);
    expect(ignoringReturned.events).toEqual([]);
    expect(ctx.signal.aborted).toBe(true);
    const abortedAt = Date.now();
    await clockPast(abortedAt + 1_100);
    latch.release();
    await ignoringReturned.until('the handler to return', (events) => events.length > 0);
    await logger.until('warn', /ms after its run was aborted \(timeout\); it should honour ctx.signal/);
  });

  it('waits on shutdown for a running handler to finish, within shutdownTimeout', async () => {
    const logger = new CapturingLogger();
    const keyPrefix = uniquePrefix('drain');
    // Booted first: Nest's Logger is process-wide, and the last app booted logs into `logger`.
    const observer = await boot({ keyPrefix, instanceId: 'observer' }, []);
    const app = await boot({ keyPrefix, shutdownTimeout: '30s' }, [SlowJobs], logger);
    const scheduler = app.get(JobScheduler);
    await scheduler.trigger('finishes');
    const ctx = await runs.until('the run', (events) => events.find((c) => c.name === 'finishes' && c.instanceId === scheduler.instanceId && !c.signal.aborted));
    let closed = false;
    const closing = app.close().then(() => (closed = true));
    apps.splice(apps.indexOf(app), 1);
    await logger.until('log', /Shutting down: waiting up to .* for 1 running job\(s\) to finish \(finishes\)/);
    expect(closed).toBe(false);
    latch.release();
    await closing;
    expect(ctx.signal.aborted).toBe(false);
    expect((await observer.get(JobScheduler).describe('finishes')).lastRun).toMatchObject({ status: 'success', fencingToken: ctx.fencingToken });
  });
});

describe('forRootAsync', () => {
  @Injectable()
  class OptionsService implements SchedulerOptionsFactory {
    createSchedulerOptions(): SchedulerModuleOptions {
      return { instanceId: 'from-class' };
    }
  }
  @Module({ providers: [OptionsService], exports: [OptionsService] })
  class OptionsModule {}

  async function compile(imports: Parameters<typeof Test.createTestingModule>[0]['imports']) {
    const moduleRef = await Test.createTestingModule({ imports }).setLogger(new CapturingLogger()).compile();
    await moduleRef.init();
    apps.push(moduleRef);
    return moduleRef;
  }

  it('reads its options from a class (useClass)', async () => {
    const app = await compile([SchedulerModule.forRootAsync({ useClass: OptionsService })]);
    expect(app.get(JobScheduler).instanceId).toBe('from-class');
  });

  it('reads its options from an existing provider (useExisting)', async () => {
    const app = await compile([SchedulerModule.forRootAsync({ imports: [OptionsModule], useExisting: OptionsService })]);
    expect(app.get(JobScheduler).instanceId).toBe('from-class');
  });
});
