import { Injectable } from '@nestjs/common';
import { DistributedJob, JobScheduler } from '../lib';
import { bootApp } from './support/app';
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
