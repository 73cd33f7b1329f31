import { Injectable } from '@nestjs/common';
import { DistributedJob, JobScheduler } from '../lib';
import { bootApp, CapturingLogger } from './support/app';
import { SHARED_REDIS_URL, uniquePrefix } from './support/redis-server';

/**
 * A rolling deploy that changes a job's code without touching its schedule must not re-base it
 * (an hourly fire due soon would be lost) nor lift a pause an operator set at runtime.
 */
describe('a boot with a changed definition', () => {
  @Injectable()
  class HourlySkip {
    @DistributedJob({ name: 'hourly', every: '1h', overlap: 'skip' })
    run() {}
  }

  @Injectable()
  class HourlyAllow {
    @DistributedJob({ name: 'hourly', every: '1h', overlap: 'allow' })
    run() {}
  }

  @Injectable()
  class HourlyQueue {
    @DistributedJob({ name: 'hourly', every: '1h', overlap: 'queue-one' })
    run() {}
  }

  @Injectable()
  class TwoHourly {
    @DistributedJob({ name: 'hourly', every: '2h', overlap: 'queue-one' })
    run() {}
  }

  /** Boots an app with `jobs`, describes the job, then applies `act` (a runtime control) before closing. */
  async function describeAfterBoot(keyPrefix: string, jobs: Parameters<typeof bootApp>[1], act?: (scheduler: JobScheduler) => Promise<void>) {
    const app = await bootApp({ redis: SHARED_REDIS_URL, keyPrefix }, jobs);
    try {
      const scheduler = app.get(JobScheduler);
      const description = await scheduler.describe('hourly');
      await act?.(scheduler);
      return description;
    } finally {
      await app.close();
    }
  }

  it('keeps the due time and a runtime pause when only the overlap policy changed, and re-bases a changed schedule', async () => {
    const keyPrefix = uniquePrefix('redefine');
    const first = await describeAfterBoot(keyPrefix, [HourlySkip]);
    expect(first.nextRunAt).not.toBeNull();

    const overlapChanged = await describeAfterBoot(keyPrefix, [HourlyAllow], (scheduler) => scheduler.pause('hourly'));
    expect(overlapChanged).toMatchObject({ overlap: 'allow', nextRunAt: first.nextRunAt });

    const pausedKept = await describeAfterBoot(keyPrefix, [HourlyQueue]);
    expect(pausedKept).toMatchObject({ overlap: 'queue-one', paused: true, nextRunAt: null });

    const rescheduled = await describeAfterBoot(keyPrefix, [TwoHourly]);
    expect(rescheduled).toMatchObject({ schedule: { every: 7_200_000 }, paused: true });
  });
});

/**
 * A rolling deploy (1 h → 2 h) that an old replica restarting interrupts must not take the
 * cluster back; a rollback, the last new replica gone, must.
 */
describe('an old replica restarting during a rolling deploy', () => {
  jest.setTimeout(30_000);

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

  const oldDefinition = '{"spec":{"every":3600000,"jitter":0},"overlap":"skip","paused":false}';
  const newDefinition = '{"spec":{"every":7200000,"jitter":0},"overlap":"skip","paused":false}';

  it('runs the definition in force, says so once, and puts its own back once no live replica declares the new one', async () => {
    const keyPrefix = uniquePrefix('old-restart');
    // Nest's Logger is process-wide, so every app logs into one capture.
    const logger = new CapturingLogger();
    const first = await bootApp({ redis: SHARED_REDIS_URL, keyPrefix, instanceId: 'old-1' }, [OldCode], logger);
    const deployed = await bootApp({ redis: SHARED_REDIS_URL, keyPrefix, instanceId: 'new' }, [NewCode], logger);
    await first.close();
    const differing = logger.count('warn', /differs from this instance's/);
    const restarted = await bootApp({ redis: SHARED_REDIS_URL, keyPrefix, instanceId: 'old-2' }, [OldCode], logger);
    let closed = false;
    try {
      const warning = await logger.until('warn', /was replaced by the one in force/);
      expect(warning.message).toBe(
        `Job "report": this instance's definition ${oldDefinition} was replaced by the one in force, ${newDefinition}, registered by ` +
          `"new", which a live replica declares: an old definition does not take the cluster back. This instance runs the definition ` +
          'in force; its own comes back only once no live replica declares that one (a rollback completed).',
      );
      expect(await restarted.get(JobScheduler).describe('report')).toMatchObject({ schedule: { every: 7_200_000 }, definedBy: 'new' });
      // Its join made every replica read the members again, and it offered its definition again: still one warning.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(logger.count('warn', /was replaced by the one in force/)).toBe(1);
      expect(logger.count('warn', /differs from this instance's/)).toBe(differing);

      // The last replica declaring the new definition leaves: a rollback, the old definition takes over.
      await deployed.close();
      closed = true;
      expect((await logger.until('warn', /back in force/)).message).toBe(
        `Job "report": no live replica declares the definition in force, ${newDefinition}, registered by "new", any more: ` +
          `this instance's ${oldDefinition} is back in force (a rollback).`,
      );
      expect(await restarted.get(JobScheduler).describe('report')).toMatchObject({ schedule: { every: 3_600_000 }, definedBy: 'old-2' });
    } finally {
      await Promise.all([closed ? undefined : deployed.close(), restarted.close()]);
    }
  });
});
