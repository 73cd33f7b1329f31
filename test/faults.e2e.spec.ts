import { Injectable } from '@nestjs/common';
import { DistributedJob, JobContext, JobScheduler } from '../lib';
import { bootApp, CapturingLogger } from './support/app';
import { TestRedisServer, uniquePrefix } from './support/redis-server';
import { EventLog } from './support/wait';

/**
 * Redis going away must not crash the app nor lose a fire. These tests run their own
 * redis-server on a free port and never touch the shared one.
 */
describe('when Redis fails', () => {
  jest.setTimeout(60_000);
  const runs = new EventLog<JobContext>();
  let server: TestRedisServer;

  @Injectable()
  class Jobs {
    @DistributedJob({ name: 'tick', every: 1000 })
    tick(ctx: JobContext) {
      runs.push(ctx);
    }
  }

  beforeEach(async () => {
    runs.events.length = 0;
    server = await TestRedisServer.reserve();
  });

  afterEach(() => server.stop());

  it('starts without Redis, says once where it tried, and schedules as soon as Redis is up', async () => {
    const logger = new CapturingLogger();
    const app = await bootApp({ redis: server.url, keyPrefix: uniquePrefix('boot') }, [Jobs], logger);
    try {
      const unreachable = new RegExp(`Redis at 127\\.0\\.0\\.1:${server.port} is unreachable`);
      expect(logger.count('error', unreachable)).toBe(1);
      expect(runs.events).toEqual([]);
      await expect(app.get(JobScheduler).list()).rejects.toThrow(`cannot reach Redis at 127.0.0.1:${server.port}: it is not connected right now`);

      await server.start();
      const first = await runs.until('the first run once Redis is up', (events) => events[0]);
      expect(first.name).toBe('tick');
      expect(logger.count('error', unreachable)).toBe(1);
      expect(logger.count('log', /is reachable again/)).toBe(1);
    } finally {
      await app.close();
    }
  });

  it('rides out a Redis crash that loses every key: logs it once, skips the fire that may have run, never runs one twice', async () => {
    await server.start();
    const logger = new CapturingLogger();
    const app = await bootApp({ redis: server.url, keyPrefix: uniquePrefix('restart') }, [Jobs], logger);
    try {
      await runs.until('two runs before the crash', (events) => events.length >= 2);
      await server.stop();
      const stoppedAt = Date.now();
      // The outage must span at least one due time; there is no event to wait for but the clock.
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      await server.start();
      const restartedAt = Date.now();

      const after = await runs.until('two runs after the restart', (events) => {
        const later = events.filter((ctx) => ctx.startedAt.getTime() >= restartedAt);
        return later.length >= 2 && later;
      });
      // A due time that came before the loss was found may have run (another replica could have
      // claimed it before Redis lost it): it is skipped, and the schedule goes on after Redis's now.
      const missed = runs.events.filter((ctx) => ctx.scheduledAt.getTime() > stoppedAt && ctx.scheduledAt.getTime() < restartedAt);
      expect(missed).toEqual([]);
      expect(after[0].scheduledAt.getTime()).toBeGreaterThan(restartedAt);
      const lost = await logger.until('warn', /Redis lost the state of 1 job\(s\)/);
      expect(lost.message).toMatch(/"tick" \(next run at .*; the fire due at .* is skipped: it may have run before the loss\)/);
      expect(logger.count('warn', /Redis lost the state/)).toBe(1);

      const scheduled = runs.events.map((ctx) => ctx.scheduledAt.getTime());
      expect(new Set(scheduled).size).toBe(scheduled.length);
      // Redis lost the fencing counter, yet tokens still increase.
      const tokens = runs.events.map((ctx) => ctx.fencingToken);
      for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]);

      expect(logger.count('error', /is unreachable/)).toBe(1);
      expect(logger.count('log', /is reachable again/)).toBe(1);
    } finally {
      await app.close();
    }
  });
});
