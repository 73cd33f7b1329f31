import { EmbeddedInProductionError, InvalidSchedulerOptionError } from '../../lib';
import { resolveSchedulerOptions } from '../../lib/scheduler-options.resolver';

describe('resolveSchedulerOptions', () => {
  it('applies the defaults', () => {
    const resolved = resolveSchedulerOptions({}, {});
    expect(resolved).toMatchObject({ redis: undefined, keyPrefix: 'dsched', lockTtl: 30_000, shutdownTimeout: 10_000, autoStart: true });
    expect(resolved.instanceId).toMatch(new RegExp(`-${process.pid}-[0-9a-f]{6}$`));
  });

  it('reads durations as ms or strings', () => {
    expect(resolveSchedulerOptions({ lockTtl: '1m', shutdownTimeout: 0 }, {})).toMatchObject({ lockTtl: 60_000, shutdownTimeout: 0 });
  });

  it('refuses the embedded coordinator in production unless allowed', () => {
    expect(() => resolveSchedulerOptions({}, { NODE_ENV: 'production' })).toThrow(EmbeddedInProductionError);
    expect(() => resolveSchedulerOptions({}, { NODE_ENV: 'production' })).toThrow(/every replica of the app would run every job/);
    expect(resolveSchedulerOptions({ allowEmbedded: true }, { NODE_ENV: 'production' }).redis).toBeUndefined();
    expect(resolveSchedulerOptions({ redis: 'redis://localhost:6379' }, { NODE_ENV: 'production' }).redis).toBe('redis://localhost:6379');
  });

  it("applies the missed-run defaults ('once', 24 h, 100) and reads the module's own", () => {
    expect(resolveSchedulerOptions({}, {}).missedRuns).toEqual({ policy: 'once', catchUpWindow: 86_400_000, maxCatchUp: 100 });
    expect(resolveSchedulerOptions({ missed: 'all', catchUpWindow: '2h', maxCatchUp: 12 }, {}).missedRuns).toEqual({ policy: 'all', catchUpWindow: 7_200_000, maxCatchUp: 12 });
  });

  it('applies the checkpoint defaults (100 updates, 5 s) and reads a duration string', () => {
    expect(resolveSchedulerOptions({}, {}).checkpoint).toEqual({ maxUpdates: 100, interval: 5_000 });
    expect(resolveSchedulerOptions({ checkpoint: { interval: '1s' } }, {}).checkpoint).toEqual({ maxUpdates: 100, interval: 1_000 });
  });

  it.each([
    ['lockTtl', { lockTtl: 100 }, '100'],
    ['lockTtl', { lockTtl: 'forever' }, "'forever'"],
    ['shutdownTimeout', { shutdownTimeout: -1 }, '-1'],
    ['keyPrefix', { keyPrefix: 'a{b}' }, "'a{b}'"],
    ['instanceId', { instanceId: '' }, "''"],
    ['checkpoint.maxUpdates', { checkpoint: { maxUpdates: 1.5 } }, '1.5'],
    ['checkpoint.maxUpdates', { checkpoint: { maxUpdates: 0 } }, '0'],
    ['checkpoint.interval', { checkpoint: { interval: 999 } }, '999'],
    ['checkpoint.interval', { checkpoint: { interval: 'soon' } }, "'soon'"],
    ['checkpoint', { checkpoint: 5 as never }, '5'],
    ['missed', { missed: 'sometimes' as never }, "'sometimes'"],
    ['catchUpWindow', { catchUpWindow: 'a while' }, "'a while'"],
    ['catchUpWindow', { catchUpWindow: -5 }, '-5'],
    ['maxCatchUp', { maxCatchUp: 0 }, '0'],
    ['maxCatchUp', { maxCatchUp: 5_000 }, '5000'],
  ])('rejects a bad %s, naming it and its value', (option, options, value) => {
    expect(() => resolveSchedulerOptions(options, {})).toThrow(InvalidSchedulerOptionError);
    expect(() => resolveSchedulerOptions(options, {})).toThrow(`option "${option}" has an invalid value ${value}`);
  });

  describe('redis', () => {
    it.each([
      ["''", '', /an empty string \(an environment variable set to nothing, such as `REDIS_URL=`, gives one\) is not a Redis address/],
      ["'   '", '   ', /is not a Redis address/],
      ["'notaurl'", 'notaurl', /expected a URL such as 'redis:\/\/host:6379\/0'/],
      ["'localhost:6379'", 'localhost:6379', /expected a URL/],
      ["'http://cache:6379'", 'http://cache:6379', /expected a URL/],
      ["'redis://'", 'redis://', /expected a URL/],
      ['null', null, /expected a URL, ioredis options, or an ioredis client/],
      ['6379', 6379, /expected a URL, ioredis options, or an ioredis client/],
    ])('refuses %s at startup, naming the option and the value', (shown, redis, reason) => {
      const resolve = () => resolveSchedulerOptions({ redis: redis as never }, {});
      expect(resolve).toThrow(InvalidSchedulerOptionError);
      expect(resolve).toThrow(`SchedulerModule: option "redis" has an invalid value ${shown}: `);
      expect(resolve).toThrow(reason);
    });

    it('refuses an empty URL in production too, instead of slipping past the guard to localhost', () => {
      expect(() => resolveSchedulerOptions({ redis: '' }, { NODE_ENV: 'production' })).toThrow(InvalidSchedulerOptionError);
      expect(() => resolveSchedulerOptions({ redis: '', allowEmbedded: true }, { NODE_ENV: 'production' })).toThrow(/option "redis"/);
    });

    it('keeps a password out of the message', () => {
      expect(() => resolveSchedulerOptions({ redis: 'http://user:secret@cache:6379' }, {})).toThrow("invalid value 'http://***@cache:6379'");
    });

    it.each(['redis://127.0.0.1:6379', 'rediss://user:pw@cache.example:6380/2', 'redis://[::1]:6379', '/var/run/redis.sock'])('accepts %s', (url) => {
      expect(resolveSchedulerOptions({ redis: url }, {}).redis).toBe(url);
    });

    it('accepts ioredis options', () => {
      expect(resolveSchedulerOptions({ redis: { host: 'cache', port: 6380 } }, {}).redis).toEqual({ host: 'cache', port: 6380 });
    });
  });

  describe('minPeriod', () => {
    it('defaults to a second, with a fixed maximum of 366 days', () => {
      expect(resolveSchedulerOptions({}, {}).bounds).toEqual({ minPeriod: 1_000, maxPeriod: 366 * 86_400_000 });
      expect(resolveSchedulerOptions({ minPeriod: '100ms' }, {}).bounds.minPeriod).toBe(100);
    });

    it.each([
      [5, '5'],
      ['400d', "'400d'"],
      ['often', "'often'"],
    ])('rejects %s', (minPeriod, shown) => {
      expect(() => resolveSchedulerOptions({ minPeriod }, {})).toThrow(`option "minPeriod" has an invalid value ${shown}`);
    });
  });
});
