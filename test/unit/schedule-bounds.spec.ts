import { InvalidJobOptionError } from '../../lib';
import { defineJob, defineSchedule } from '../../lib/scheduling/job-definition';
import { DEFAULT_SCHEDULE_BOUNDS, formatPeriod } from '../../lib/scheduling/schedule-bounds';

describe('schedule bounds', () => {
  it('refuses a period below the minimum, naming the job, the option, the value and the minimum', () => {
    const define = () => defineJob({ name: 'heartbeat', every: 1 }, 'x');
    expect(define).toThrow(InvalidJobOptionError);
    expect(define).toThrow(`Job "heartbeat": option "every" has an invalid value 1: a period below the minimum of 1 s (module option "minPeriod")`);
    expect(() => defineSchedule('heartbeat', { every: '999ms' })).toThrow(/below the minimum of 1 s/);
    expect(defineSchedule('heartbeat', { every: '1s' })).toEqual({ every: 1_000, jitter: 0 });
  });

  it('refuses a period above the maximum instead of stopping the job', () => {
    expect(() => defineSchedule('heartbeat', { every: 1e300 })).toThrow(
      'Job "heartbeat": option "every" has an invalid value 1e+300: a period above the maximum of 366 days; for rarer runs use "cron"',
    );
    expect(() => defineSchedule('heartbeat', { every: '367d' })).toThrow(/above the maximum of 366 days/);
    expect(defineSchedule('heartbeat', { every: '366d' })).toEqual({ every: 366 * 86_400_000, jitter: 0 });
  });

  it('follows the minPeriod the app sets', () => {
    const bounds = { ...DEFAULT_SCHEDULE_BOUNDS, minPeriod: 50 };
    expect(defineSchedule('fast', { every: 50 }, bounds)).toEqual({ every: 50, jitter: 0 });
    expect(() => defineSchedule('fast', { every: 49 }, bounds)).toThrow(/below the minimum of 50 ms/);
  });

  it('accepts any cron expression under the default minimum: none fires more often than once a second', () => {
    expect(defineSchedule('every-second', { cron: '* * * * * *' })).toEqual({ cron: '* * * * * *', jitter: 0 });
  });

  it('refuses a cron expression firing more often than a minimum above a second', () => {
    const bounds = { ...DEFAULT_SCHEDULE_BOUNDS, minPeriod: 60_000 };
    expect(() => defineSchedule('busy', { cron: '*/10 * * * * *' }, bounds)).toThrow(
      `Job "busy": option "cron" has an invalid value '*/10 * * * * *': it fires 10 s apart, more often than the minimum period of 60 s (module option "minPeriod")`,
    );
    // The short gap is at the turn of the minute: 59 → 0.
    expect(() => defineSchedule('edge', { cron: '0,59 * * * * *' }, { ...bounds, minPeriod: 5_000 })).toThrow(/fires 1 s apart/);
    expect(defineSchedule('hourly', { cron: '0 * * * *' }, bounds)).toEqual({ cron: '0 * * * *', jitter: 0 });
  });

  it('says periods in plain units', () => {
    expect([250, 1_000, 90_000, 3_600_000, 366 * 86_400_000].map(formatPeriod)).toEqual(['250 ms', '1 s', '90 s', '60 min', '366 days']);
  });
});
