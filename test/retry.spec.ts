import { INestApplicationContext, Injectable } from '@nestjs/common';
import type { Subscription } from 'rxjs';
import { DistributedJob, JobContext, JobScheduler, SchedulerErrorEvent } from '../lib';
import { bootApp, CapturingLogger } from './support/app';
import { SHARED_REDIS_URL, uniquePrefix } from './support/redis-server';
import { eventually, EventLog } from './support/wait';

/**
 * `retry` through the whole app, on Redis: a failed run is tried again as a new claim (a new
 * fencing token, the same due time, `ctx.attempt` + 1) after its backoff; `retryIf` stops it; the
 * last failure alone reaches `errors$`; a pending retry shows in `describe`; and a retry is a
 * claim under the job's overlap policy like any trigger.
 */
const runs = new EventLog<JobContext & { endedAt?: number }>();
const behaviour = new Map<string, (ctx: JobContext) => Promise<unknown>>();

function handle(ctx: JobContext): Promise<unknown> {
  runs.push(ctx);
  return behaviour.get(ctx.name)?.(ctx) ?? Promise.resolve();
}

const fail = (message: string) => Promise.reject(new Error(message));

@Injectable()
class RetryJobs {
  @DistributedJob({ name: 'flaky', retry: { attempts: 3, backoff: { delay: 500, factor: 2 } } })
  flaky(ctx: JobContext) {
    return handle(ctx);
  }

  @DistributedJob({ name: 'picky', retry: { attempts: 5, retryIf: (error) => !/fatal/.test(error.message) } })
  picky(ctx: JobContext) {
    return handle(ctx);
  }

  /** Its backoff is the module's (delay 100 ms, factor 1). */
  @DistributedJob({ name: 'hopeless', retry: { attempts: 2 } })
  hopeless(ctx: JobContext) {
    return handle(ctx);
  }

  @DistributedJob({ name: 'overlapping', every: '1s', overlap: 'skip', paused: true, retry: { attempts: 2, backoff: { delay: 1_500 } } })
  overlapping(ctx: JobContext) {
    return handle(ctx);
  }
}

describe('retries', () => {
  const logger = new CapturingLogger();
  let app: INestApplicationContext;
  let scheduler: JobScheduler;
  const errors: SchedulerErrorEvent[] = [];
  let subscription: Subscription;

  beforeAll(async () => {
    behaviour.set('flaky', (ctx) => (ctx.attempt < 3 ? fail(`flaky attempt ${ctx.attempt}`) : Promise.resolve()));
    behaviour.set('picky', (ctx) => fail(ctx.attempt === 1 ? 'transient' : 'fatal'));
    behaviour.set('hopeless', (ctx) => fail(`hopeless attempt ${ctx.attempt}`));
    app = await bootApp(
      { redis: SHARED_REDIS_URL, keyPrefix: uniquePrefix('retry'), shutdownTimeout: 200, retry: { backoff: { delay: 100, factor: 1 } } },
      [RetryJobs],
      logger,
    );
    scheduler = app.get(JobScheduler);
    subscription = scheduler.errors$.subscribe((event) => errors.push(event));
  });

  afterAll(async () => {
    subscription.unsubscribe();
    await app.close();
  });

  const attemptsOf = (name: string, count: number) =>
    runs.until(`${count} attempts of ${name}`, (events) => {
      const of = events.filter((ctx) => ctx.name === name);
      return of.length >= count && of.slice(0, count);
    });

  it('runs a handler failing twice a third time, each attempt a new claim after its backoff', async () => {
    await scheduler.trigger('flaky');
    const [first] = await attemptsOf('flaky', 1);
    // Between attempts the retry waits in the coordinator, and describe shows it.
    const pending = await eventually('the pending retry of flaky', () => scheduler.describe('flaky'), ({ pendingRetries }) => pendingRetries.length > 0, 2_000);
    expect(pending.pendingRetries).toEqual([
      { attempt: 2, scheduledAt: first.scheduledAt, notBefore: expect.any(Date), trigger: 'MANUAL', firstFencingToken: first.fencingToken, taskId: null },
    ]);
    expect(pending.pendingRetries[0].notBefore.getTime() - first.startedAt.getTime()).toBeGreaterThanOrEqual(500);

    const attempts = await attemptsOf('flaky', 3);
    expect(attempts.map((ctx) => ctx.attempt)).toEqual([1, 2, 3]);
    const tokens = attempts.map((ctx) => ctx.fencingToken);
    expect(tokens[1]).toBeGreaterThan(tokens[0]);
    expect(tokens[2]).toBeGreaterThan(tokens[1]);
    // Every attempt serves the same request time.
    expect(new Set(attempts.map((ctx) => ctx.scheduledAt.getTime())).size).toBe(1);
    expect(attempts.every((ctx) => ctx.trigger === 'MANUAL')).toBe(true);
    // Backoff: 500 ms, then 500 * 2 (start times on Redis's clock; upper bounds generous).
    const gaps = [attempts[1].startedAt.getTime() - attempts[0].startedAt.getTime(), attempts[2].startedAt.getTime() - attempts[1].startedAt.getTime()];
    expect(gaps[0]).toBeGreaterThanOrEqual(500);
    expect(gaps[1]).toBeGreaterThanOrEqual(1_000);
    expect(gaps[0]).toBeLessThan(5_000);
    expect(gaps[1]).toBeLessThan(6_000);

    const done = await eventually('the end of flaky', () => scheduler.describe('flaky'), (job) => job.lastRun?.status === 'success');
    expect(done.pendingRetries).toEqual([]);
    expect(done.lastRun).toMatchObject({ attempt: 3, fencingToken: attempts[2].fencingToken });
    // A job that succeeded on a retry reported no error.
    expect(errors.filter((event) => event.job === 'flaky')).toEqual([]);
  });

  it('stops retrying when retryIf answers false, and reports that failure once', async () => {
    await scheduler.trigger('picky');
    await logger.until('error', /Job "picky" failed \(attempt 2; its retryIf answered false\): fatal/);
    expect(runs.events.filter((ctx) => ctx.name === 'picky').map((ctx) => ctx.attempt)).toEqual([1, 2]);
    expect(errors.filter((event) => event.job === 'picky').map((event) => event.error.message)).toEqual(['fatal']);
    expect((await scheduler.describe('picky')).pendingRetries).toEqual([]);
  });

  it('reports the last failure once when the attempts are used up (the backoff is the module default)', async () => {
    await scheduler.trigger('hopeless');
    await logger.until('error', /Job "hopeless" failed \(attempt 2; its 2 attempts are used up\)/);
    const attempts = runs.events.filter((ctx) => ctx.name === 'hopeless');
    expect(attempts.map((ctx) => ctx.attempt)).toEqual([1, 2]);
    expect(attempts[1].startedAt.getTime() - attempts[0].startedAt.getTime()).toBeGreaterThanOrEqual(100);
    expect(errors.filter((event) => event.job === 'hopeless').map((event) => [event.phase, event.error.message])).toEqual([['run', 'hopeless attempt 2']]);
    const { lastRun } = await eventually('the end of hopeless', () => scheduler.describe('hopeless'), (job) => job.lastRun?.status !== 'running');
    expect(lastRun).toMatchObject({ status: 'error', attempt: 2, fencingToken: attempts[1].fencingToken, error: 'hopeless attempt 2' });
  });

  it("claims a retry under the job's overlap policy: skipped while the next due time's run goes on (overlap 'skip')", async () => {
    // Due time D fails at once; D + 1 s runs until the retry of D (due at D + 1.5 s) was claimed and skipped.
    let failed: JobContext | undefined;
    behaviour.set('overlapping', async (ctx) => {
      if (!failed) {
        failed = ctx;
        throw new Error('first due time fails');
      }
      if (ctx.scheduledAt.getTime() === failed.scheduledAt.getTime() + 1_000) {
        await logger.until('warn', /Job "overlapping": attempt 2 \(a retry\) of the run of .* was skipped: a run is still going/);
      }
    });
    await scheduler.resume('overlapping');
    const [first] = await attemptsOf('overlapping', 1);
    expect(first).toBe(failed);
    const skipped = await logger.until('warn', /Job "overlapping": attempt 2 \(a retry\) of the run of (\S+) was skipped/);
    expect(skipped.message).toContain(first.scheduledAt.toISOString());
    // The next due times run as usual; the due time that failed is never run again.
    const later = await attemptsOf('overlapping', 4);
    expect(later.filter((ctx) => ctx.scheduledAt.getTime() === first.scheduledAt.getTime())).toHaveLength(1);
    expect(later.every((ctx) => ctx.attempt === 1)).toBe(true);
    expect((await scheduler.describe('overlapping')).pendingRetries).toEqual([]);
  });
});
