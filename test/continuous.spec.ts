import { INestApplicationContext, Injectable } from '@nestjs/common';
import { filter, firstValueFrom } from 'rxjs';
import { ContinuousJobError, DistributedJob, JobAbortedError, JobContext, JobScheduler } from '../lib';
import { RedisCoordinator } from '../lib/coordination/redis/redis.coordinator';
import { bootApp, CapturingLogger } from './support/app';
import { SHARED_REDIS_URL, uniquePrefix } from './support/redis-server';
import { eventually, EventLog } from './support/wait';

/**
 * A continuous job in one app on Redis: its run starts once the replica knows it is chosen and
 * holds a slot lease (shown in `describe` as a holder), a run whose handler returns while still
 * chosen starts again after a backoff (logged), `pause` aborts the run (`paused`) and gives no
 * new slot, `resume` starts it again with a new fencing token, and shutdown aborts it at once
 * (not after `shutdownTimeout`) and releases its slot.
 */
type Event = { type: 'start' | 'end'; name: string; token: number; reason?: string; at: number };
const events = new EventLog<Event>();

/** Runs until aborted, as a consumer loop would. */
function untilAborted(ctx: JobContext): Promise<void> {
  events.push({ type: 'start', name: ctx.name, token: ctx.fencingToken, at: Date.now() });
  return new Promise((resolve) =>
    ctx.signal.addEventListener('abort', () => {
      events.push({ type: 'end', name: ctx.name, token: ctx.fencingToken, reason: (ctx.signal.reason as JobAbortedError).kind, at: Date.now() });
      resolve();
    }),
  );
}

@Injectable()
class ContinuousFixtureJobs {
  @DistributedJob({ name: 'consumer', continuous: { max: 1 } })
  consumer(ctx: JobContext) {
    return untilAborted(ctx);
  }

  /** Returns at once: restarted after a backoff while still chosen. */
  @DistributedJob({ name: 'quitter', continuous: { max: 1 } })
  quitter(ctx: JobContext) {
    events.push({ type: 'start', name: ctx.name, token: ctx.fencingToken, at: Date.now() });
  }
}

describe('continuous jobs in one app', () => {
  jest.setTimeout(30_000);
  const logger = new CapturingLogger();
  let app: INestApplicationContext;
  let scheduler: JobScheduler;
  const keyPrefix = uniquePrefix('continuous');
  const starts = (name: string) => events.events.filter((event) => event.type === 'start' && event.name === name);

  beforeAll(async () => {
    app = await bootApp({ redis: SHARED_REDIS_URL, keyPrefix, shutdownTimeout: 10_000, lockTtl: 3_000 }, [ContinuousFixtureJobs], logger);
    scheduler = app.get(JobScheduler);
  });

  afterAll(() => app?.close());

  it('runs it under a slot lease that describe shows as its holder', async () => {
    const start = await events.until('the consumer to start', () => starts('consumer')[0]);
    const described = await scheduler.describe('consumer');
    expect(described.continuous).toEqual({ max: 1, holders: [{ instanceId: scheduler.instanceId, fencingToken: start.token, since: expect.any(Date) }] });
    expect(described.running).toEqual([expect.objectContaining({ fencingToken: start.token, trigger: 'EVENT' })]);
    expect((await scheduler.list()).find((job) => job.name === 'consumer')!.continuous!.holders).toHaveLength(1);
    expect(logger.count('log', /^Continuous job "consumer": running here with fencing token \d+\.$/)).toBe(1);
  });

  it('starts a run whose handler returned again after a backoff, with a new token, and says so', async () => {
    const [first, second] = await events.until('two runs of the quitter', () => (starts('quitter').length >= 2 ? starts('quitter') : null), 10_000);
    expect(second.token).toBeGreaterThan(first.token);
    // The first backoff: 1 s, less up to a fifth.
    expect(second.at - first.at).toBeGreaterThanOrEqual(790);
    await logger.until('warn', /^Continuous job "quitter": its run \(fencing token \d+\) returned while this replica is still chosen; starting it again in \d+ ms \(restart 1 in a row\)\.$/);
  });

  it('aborts the run when paused, gives no slot while paused, and starts a new one when resumed', async () => {
    const [running] = starts('consumer');
    await scheduler.pause('consumer');
    const end = await events.until('the consumer to end', (all) => all.find((event) => event.type === 'end' && event.token === running.token));
    expect(end.reason).toBe('paused');
    await eventually('its slot released', () => scheduler.describe('consumer'), (job) => job.continuous!.holders.length === 0);
    expect(starts('consumer')).toHaveLength(1);

    await scheduler.resume('consumer');
    const again = await events.until('the consumer to start again', () => starts('consumer')[1]);
    expect(again.token).toBeGreaterThan(running.token);
  });

  it('refuses to trigger a continuous job, naming it: a run beside its slots would break max', async () => {
    const before = starts('consumer').length;
    await expect(scheduler.trigger('consumer')).rejects.toThrow(new ContinuousJobError('consumer', 'trigger()'));
    await expect(scheduler.trigger('consumer')).rejects.toThrow(/^Job "consumer" is a continuous job: .* so trigger\(\) cannot run it once\./);
    expect((await scheduler.describe('consumer')).continuous!.holders).toHaveLength(1);
    expect(starts('consumer')).toHaveLength(before);
  });

  it('aborts its runs at shutdown at once and releases their slots', async () => {
    const running = starts('consumer').at(-1)!;
    const closing = Date.now();
    const closed = app.close();
    const end = await events.until('the consumer to end', (all) => all.find((event) => event.type === 'end' && event.token === running.token));
    expect(end.reason).toBe('shutdown');
    await closed;
    // Not after shutdownTimeout (10 s).
    expect(Date.now() - closing).toBeLessThan(5_000);
    app = undefined as unknown as INestApplicationContext;
    const coordinator = new RedisCoordinator(SHARED_REDIS_URL, keyPrefix);
    await coordinator.connect();
    await firstValueFrom(coordinator.available$.pipe(filter(Boolean)));
    try {
      const [record] = await coordinator.describe(['consumer']);
      expect(record.running).toEqual([]);
    } finally {
      await coordinator.close();
    }
  });
});
