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

  it.each([
    ['lockTtl', { lockTtl: 100 }, '100'],
    ['lockTtl', { lockTtl: 'forever' }, "'forever'"],
    ['shutdownTimeout', { shutdownTimeout: -1 }, '-1'],
    ['keyPrefix', { keyPrefix: 'a{b}' }, "'a{b}'"],
    ['instanceId', { instanceId: '' }, "''"],
  ])('rejects a bad %s, naming it and its value', (option, options, value) => {
    expect(() => resolveSchedulerOptions(options, {})).toThrow(InvalidSchedulerOptionError);
    expect(() => resolveSchedulerOptions(options, {})).toThrow(`option "${option}" has an invalid value ${value}`);
  });
});
