import { InvalidJobOptionError } from '../../lib';
import { defineSchedule } from '../../lib/scheduling/job-definition';
import { mergeSchedule } from '../../lib/scheduling/schedule-update';

/** What updateSchedule puts in force, given the schedule in force and the fields the caller gave. */
const apply = (current: Parameters<typeof mergeSchedule>[1], update: Parameters<typeof mergeSchedule>[2]) =>
  defineSchedule('job', mergeSchedule('job', current, update));

describe('updateSchedule keeps the fields the caller did not give', () => {
  const every = { every: 5_000, jitter: 0.1 };
  const cron = { cron: '0 3 * * *', timeZone: 'Europe/Paris', jitter: 0.2 };

  it('a new period keeps the jitter', () => {
    expect(apply(every, { every: '2s' })).toEqual({ every: 2_000, jitter: 0.1 });
    expect(apply(every, { every: '2s', jitter: undefined })).toEqual({ every: 2_000, jitter: 0.1 });
  });

  it('a new jitter alone keeps the schedule', () => {
    expect(apply(every, { jitter: 0 })).toEqual({ every: 5_000, jitter: 0 });
    expect(apply(cron, { jitter: 0.5 })).toEqual({ cron: '0 3 * * *', timeZone: 'Europe/Paris', jitter: 0.5 });
  });

  it('a new cron expression keeps the time zone and jitter of a cron schedule', () => {
    expect(apply(cron, { cron: '0 4 * * *' })).toEqual({ cron: '0 4 * * *', timeZone: 'Europe/Paris', jitter: 0.2 });
    expect(apply(cron, { timeZone: 'UTC' })).toEqual({ cron: '0 3 * * *', timeZone: 'UTC', jitter: 0.2 });
  });

  it('switching between cron and every keeps the jitter and drops what belongs to the other kind', () => {
    expect(apply(cron, { every: '1m' })).toEqual({ every: 60_000, jitter: 0.2 });
    expect(apply(every, { cron: '0 * * * *' })).toEqual({ cron: '0 * * * *', jitter: 0.1 });
  });

  it('refuses an empty update, a time zone for a period, and a change to an on-demand job without a schedule', () => {
    expect(() => apply(every, {})).toThrow(/updateSchedule needs "cron" or "every"/);
    expect(() => apply(every, { timeZone: 'UTC' })).toThrow(InvalidJobOptionError);
    expect(() => apply(null, { jitter: 0.1 })).toThrow(/an on-demand job has no schedule to change/);
    expect(apply(null, { every: '1m' })).toEqual({ every: 60_000, jitter: 0 });
  });
});
