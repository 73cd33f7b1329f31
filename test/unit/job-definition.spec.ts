import { InvalidJobOptionError } from '../../lib';
import { defineJob, defineSchedule, sharedDefinition } from '../../lib/scheduling/job-definition';

describe('defineJob', () => {
  it('applies the defaults once: the class and method name, overlap skip, not paused, vendor type = name', () => {
    expect(defineJob({ every: '30s' }, 'Reports.send')).toEqual({
      name: 'Reports.send',
      vendorType: 'Reports.send',
      retain: null,
      spec: { every: 30_000, jitter: 0 },
      overlap: 'skip',
      paused: false,
      runOnStart: false,
      startDelay: 0,
      at: null,
      threshold: null,
      initialDelay: 0,
      timeout: null,
      checkpoint: {},
      retry: {},
      missedRuns: { policy: 'once', catchUpWindow: 24 * 3_600_000, maxCatchUp: 100 },
      hosts: null,
      continuous: null,
      concurrency: null,
    });
  });

  it('reads the missed-run options over the module defaults, and shares only a policy that is not the default', () => {
    const moduleDefaults = { policy: 'skip' as const, catchUpWindow: 3_600_000, maxCatchUp: 10 };
    expect(defineJob({ name: 'n', every: '1m' }, 'x', undefined, moduleDefaults).missedRuns).toEqual(moduleDefaults);
    expect(defineJob({ name: 'n', every: '1m', missed: 'all', catchUpWindow: '2h', maxCatchUp: 5 }, 'x', undefined, moduleDefaults).missedRuns).toEqual({
      policy: 'all',
      catchUpWindow: 7_200_000,
      maxCatchUp: 5,
    });
    expect(defineJob({ name: 'n', every: '1m', catchUpWindow: 60_000 }, 'x').missedRuns).toEqual({ policy: 'once', catchUpWindow: 60_000, maxCatchUp: 100 });
    // The default policy is left out of the shared definition: definitions of earlier versions keep their hash.
    expect(sharedDefinition(defineJob({ name: 'n', every: '1m' }, 'x'))).toEqual({ spec: { every: 60_000, jitter: 0 }, overlap: 'skip', paused: false });
    expect(sharedDefinition(defineJob({ name: 'n', every: '1m', missed: 'all' }, 'x')).missed).toEqual({ policy: 'all', catchUpWindow: 86_400_000, maxCatchUp: 100 });
  });

  it('names the job, the option and the value of a bad missed, catchUpWindow or maxCatchUp', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ every: '1m', missed: 'twice' }, /^Job "n": option "missed" has an invalid value 'twice': expected one of 'skip', 'once', 'all'/],
      [{ every: '1m', catchUpWindow: 'soon' }, /^Job "n": option "catchUpWindow" has an invalid value 'soon': expected a duration/],
      [{ every: '1m', catchUpWindow: 0 }, /^Job "n": option "catchUpWindow" has an invalid value 0/],
      [{ every: '1m', catchUpWindow: '400d' }, /^Job "n": option "catchUpWindow" has an invalid value '400d'/],
      [{ every: '1m', maxCatchUp: 0 }, /^Job "n": option "maxCatchUp" has an invalid value 0: expected a whole number of runs from 1 to 1000/],
      [{ every: '1m', maxCatchUp: 2.5 }, /^Job "n": option "maxCatchUp" has an invalid value 2.5/],
      [{ every: '1m', maxCatchUp: 1001 }, /^Job "n": option "maxCatchUp" has an invalid value 1001/],
      [{ missed: 'all' }, /^Job "n": option "missed" has an invalid value 'all': a missed-run policy applies only to a "cron" or "every" schedule/],
    ];
    for (const [options, message] of cases) {
      expect(() => defineJob({ name: 'n', ...options }, 'x')).toThrow(InvalidJobOptionError);
      expect(() => defineJob({ name: 'n', ...options }, 'x')).toThrow(message);
    }
  });

  it('checks a job\'s checkpoint options, keeping only the ones it sets', () => {
    expect(defineJob({ name: 'n', checkpoint: { interval: '2s' } }, 'x').checkpoint).toEqual({ interval: 2_000 });
    expect(() => defineJob({ name: 'n', checkpoint: { interval: 500 } }, 'x')).toThrow(/Job "n": option "checkpoint.interval" has an invalid value 500: expected a duration from 1 s/);
    expect(() => defineJob({ name: 'n', checkpoint: { maxUpdates: 0 } }, 'x')).toThrow(/Job "n": option "checkpoint.maxUpdates" has an invalid value 0/);
  });

  it('names the job, the option and the value of a bad vendorType or retain', () => {
    expect(() => defineJob({ name: 'n', vendorType: '' }, 'x')).toThrow(/Job "n": option "vendorType" has an invalid value ''/);
    expect(() => defineJob({ name: 'n', retain: -1 }, 'x')).toThrow(/Job "n": option "retain" has an invalid value -1/);
    expect(defineJob({ name: 'n', vendorType: 'reports', retain: 5 }, 'x')).toMatchObject({ vendorType: 'reports', retain: 5 });
  });

  it('reads cron with its time zone, and a job with no schedule as on-demand', () => {
    expect(defineJob({ name: 'n', cron: '0 3 * * *', timeZone: 'Europe/Paris', jitter: 0.2 }, 'x').spec).toEqual({
      cron: '0 3 * * *',
      timeZone: 'Europe/Paris',
      jitter: 0.2,
    });
    expect(defineJob({ name: 'manual', timeout: '2m' }, 'x')).toMatchObject({ spec: null, timeout: 120_000 });
  });

  const invalid: [string, Parameters<typeof defineJob>[0], string, string][] = [
    ['an invalid cron', { name: 'j', cron: '61 * * * *' }, 'cron', "'61 * * * *'"],
    ['a cron with 7 fields', { name: 'j', cron: '* * * * * * *' }, 'cron', "'* * * * * * *'"],
    ['an impossible day', { name: 'j', cron: '0 0 31 2 *' }, 'cron', "'0 0 31 2 *'"],
    ['both cron and every', { name: 'j', cron: '* * * * *', every: 1000 }, 'cron', "'* * * * *'"],
    ['a zero period', { name: 'j', every: 0 }, 'every', '0'],
    ['a negative period', { name: 'j', every: -5 }, 'every', '-5'],
    ['an unreadable period', { name: 'j', every: 'soon' }, 'every', "'soon'"],
    ['jitter above 1', { name: 'j', every: 1000, jitter: 1.5 }, 'jitter', '1.5'],
    ['negative jitter', { name: 'j', every: 1000, jitter: -0.1 }, 'jitter', '-0.1'],
    ['an unknown time zone', { name: 'j', cron: '* * * * *', timeZone: 'Mars/Olympus' }, 'timeZone', "'Mars/Olympus'"],
    ['a time zone without cron', { name: 'j', every: 1000, timeZone: 'UTC' }, 'timeZone', "'UTC'"],
    ['an unknown overlap policy', { name: 'j', every: 1000, overlap: 'queue' as never }, 'overlap', "'queue'"],
    ['a zero timeout', { name: 'j', every: 1000, timeout: 0 }, 'timeout', '0'],
    ['a timeout beyond what a timer can hold', { name: 'j', every: 1000, timeout: '30d' }, 'timeout', "'30d'"],
    ['a period below a millisecond', { name: 'j', every: 0.4 }, 'every', '0.4'],
    ['an empty name', { name: ' ', every: 1000 }, 'name', "' '"],
  ];

  it.each(invalid)('rejects %s, naming the job, the option and the value', (_, options, option, value) => {
    let error: unknown;
    try {
      defineJob(options, 'Owner.method');
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(InvalidJobOptionError);
    const message = (error as Error).message;
    expect(message).toContain(`option "${option}"`);
    expect(message).toContain(value);
    expect(message).toMatch(/^Job "(j|Owner\.method)"/);
    expect((error as InvalidJobOptionError).option).toBe(option);
  });

  it('validates updateSchedule input with the same rules', () => {
    expect(defineSchedule('j', { every: '5m' })).toEqual({ every: 300_000, jitter: 0 });
    expect(() => defineSchedule('j', { cron: 'nope' })).toThrow(/Job "j": option "cron" has an invalid value 'nope'/);
  });
});
