import { Injectable } from '@nestjs/common';
import Redis from 'ioredis';
import { DistributedJob, JobContext, JobScheduler } from '../lib';
import { Coordinator } from '../lib/coordination/coordinator.interface';
import { bootApp, CapturingLogger } from './support/app';
import { TestRedisServer, uniquePrefix } from './support/redis-server';
import { EventLog } from './support/wait';

/**
 * A lease that cannot be renewed in time has two causes that call for opposite answers: Redis
 * stalling (nothing to change in the app) or this process's event loop blocked (a handler that
 * does not yield). The warnings must name the one that happened, and a run whose handler already
 * returned must not be reported as aborted. Own redis-server: these tests pause it.
 */
describe('when a lease cannot be renewed in time', () => {
  jest.setTimeout(60_000);
  const LOCK_TTL = 1_000;
  const started = new EventLog<JobContext>();
  const ended = new EventLog<string>();
  /** When the replica sent each lease extension (observed, not changed). */
  const extensions = new EventLog<number>();
  let finishHandler: () => void = () => undefined;
  let server: TestRedisServer;
  let redis: Redis;

  @Injectable()
  class Jobs {
    /** Returns when the test says so. */
    @DistributedJob({ name: 'short' })
    async short(ctx: JobContext) {
      started.push(ctx);
      await new Promise<void>((resolve) => (finishHandler = resolve));
      ended.push(ctx.signal.aborted ? 'aborted' : 'returned');
    }

    /** Runs until its signal aborts. */
    @DistributedJob({ name: 'patient' })
    async patient(ctx: JobContext) {
      started.push(ctx);
      await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
    }

    /** Blocks the event loop for longer than its lease, then waits a little. */
    @DistributedJob({ name: 'hog' })
    async hog(ctx: JobContext) {
      started.push(ctx);
      const until = Date.now() + 1.5 * LOCK_TTL;
      while (Date.now() < until) {
        // Computing without yielding, as a handler that blocks the event loop does.
      }
      await new Promise((resolve) => setTimeout(resolve, LOCK_TTL / 2));
    }
  }

  let app: Awaited<ReturnType<typeof bootApp>>;
  let logger: CapturingLogger;
  let prefix: string;

  beforeAll(async () => {
    server = await TestRedisServer.reserve();
    await server.start();
    redis = server.client();
  });

  beforeEach(async () => {
    started.events.length = 0;
    ended.events.length = 0;
    extensions.events.length = 0;
    logger = new CapturingLogger();
    prefix = uniquePrefix('lease');
    app = await bootApp({ redis: server.url, keyPrefix: prefix, instanceId: 'solo', lockTtl: LOCK_TTL }, [Jobs], logger);
    const coordinator = app.get(Coordinator);
    const extend = coordinator.extend.bind(coordinator);
    coordinator.extend = (...args) => {
      extensions.push(Date.now());
      return extend(...args);
    };
  });

  afterEach(() => app?.close());

  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
  });

  const warnings = () => logger.lines.filter((line) => line.level === 'warn').map((line) => line.message);

  it('does not report a run whose handler returned during a Redis stall as aborted, and says Redis stalled', async () => {
    await app.get(JobScheduler).trigger('short');
    const run = await started.until('the run', (events) => events[0]);
    // Its lease is gone, as another replica finds an expired lease and drops it, and Redis stalls
    // for longer than lockTtl: the replica's lease calls wait in Redis.
    // Both in one write, so that no lease call of the replica lands between them.
    const [[dropped]] = (await redis
      .pipeline()
      .hdel(`{${prefix}}:runs:short`, String(run.fencingToken))
      .call('CLIENT', 'PAUSE', String(1.5 * LOCK_TTL), 'WRITE')
      .exec())!;
    expect(dropped).toBeNull();
    const pausedAt = Date.now();
    // Once a lease extension is waiting in the stall, well before the 90 % give-up.
    await extensions.until('an extension sent into the stall', (sent) => sent.some((at) => at >= pausedAt));
    finishHandler();
    expect(await ended.until('the handler returned', (events) => events[0])).toBe('returned');

    const warning = await logger.until('warn', /Job "short".*(lease|lock)/);
    expect(warning.message).toMatch(new RegExp(`Job "short": the run with fencing token ${run.fencingToken} ended \\(success\\), but its lease had expired`));
    expect(warning.message).toMatch(/Redis took \d+ ms to answer \(it stalled/);
    expect(warning.message).not.toMatch(/event loop was blocked|raise lockTtl/);
    expect(warnings().filter((message) => /is aborted/.test(message))).toEqual([]);
  });

  it('aborts a run still going when Redis stalls past 90 % of lockTtl, and says Redis stalled, not the event loop', async () => {
    await app.get(JobScheduler).trigger('patient');
    const run = await started.until('the run', (events) => events[0]);
    await redis.call('CLIENT', 'PAUSE', String(2.5 * LOCK_TTL), 'WRITE');
    const warning = await logger.until('warn', /Job "patient" .*is aborted/);
    expect(run.signal.aborted).toBe(true);
    expect(warning.message).toMatch(/its lock could not be renewed before it expired: Redis took \d+ ms to answer \(it stalled/);
    expect(warning.message).toMatch(/event loop was not blocked/);
  });

  it('says the event loop was blocked when a handler blocks it past its lease', async () => {
    await app.get(JobScheduler).trigger('hog');
    await started.until('the run', (events) => events[0]);
    const warning = await logger.until('warn', /Job "hog" .*is aborted/);
    expect(warning.message).toMatch(/event loop was blocked for up to \d+ ms/);
    expect(warning.message).not.toMatch(/Redis took/);
  });
});
