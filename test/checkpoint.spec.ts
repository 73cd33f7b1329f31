import { INestApplicationContext, Injectable } from '@nestjs/common';
import {
  DistributedJob,
  InvalidCheckpointError,
  InvalidSchedulerOptionError,
  JobContext,
  JobScheduler,
  LastCheckpoint,
  MAX_CHECKPOINT_BYTES,
  SchedulerModuleOptions,
  UnknownJobError,
} from '../lib';
import { Coordinator } from '../lib/coordination/coordinator.interface';
import { bootApp, CapturingLogger } from './support/app';
import { SHARED_REDIS_URL, uniquePrefix } from './support/redis-server';
import { eventually, EventLog } from './support/wait';

/**
 * `ctx.checkpoint` and `ctx.lastCheckpoint` through the whole app, on Redis: what a run writes
 * (buffered, flushed at `maxUpdates`, at `interval`, at its end and at shutdown) is what the next
 * run starts from, and a run fenced off by a newer one cannot overwrite it.
 */
const runs = new EventLog<JobContext>();
const behaviour = new Map<string, (ctx: JobContext) => Promise<unknown>>();

function handle(ctx: JobContext): Promise<unknown> {
  runs.push(ctx);
  return behaviour.get(ctx.name)?.(ctx) ?? Promise.resolve();
}

@Injectable()
class CheckpointJobs {
  @DistributedJob({ name: 'progress' })
  progress(ctx: JobContext) {
    return handle(ctx);
  }

  @DistributedJob({ name: 'batched', checkpoint: { maxUpdates: 3, interval: '60s' } })
  batched(ctx: JobContext) {
    return handle(ctx);
  }

  @DistributedJob({ name: 'timed', checkpoint: { maxUpdates: 1_000, interval: '1s' } })
  timed(ctx: JobContext) {
    return handle(ctx);
  }

  @DistributedJob({ name: 'zombie', checkpoint: { maxUpdates: 1 } })
  zombie(ctx: JobContext) {
    return handle(ctx);
  }

  @DistributedJob({ name: 'held', checkpoint: { interval: '60s' } })
  held(ctx: JobContext) {
    return handle(ctx);
  }
}

/** A promise the test resolves when the handler may go on. */
class Gate {
  release!: () => void;
  readonly passed = new Promise<void>((resolve) => (this.release = resolve));
}


describe('checkpoints', () => {
  const logger = new CapturingLogger();
  let keyPrefix: string;
  let app: INestApplicationContext;
  let scheduler: JobScheduler;

  async function boot(options: Partial<SchedulerModuleOptions> = {}): Promise<INestApplicationContext> {
    return bootApp({ redis: SHARED_REDIS_URL, keyPrefix, shutdownTimeout: 200, ...options }, [CheckpointJobs], logger);
  }

  /** Triggers a run of `name` and resolves with its context once it has started. */
  async function runOf(name: string): Promise<JobContext> {
    const before = runs.events.filter((ctx) => ctx.name === name).length;
    await scheduler.trigger(name);
    return runs.until(`run ${before + 1} of ${name}`, (events) => events.filter((ctx) => ctx.name === name)[before]);
  }

  /** Resolves once the run with this token has ended (its end recorded in the coordinator). */
  function ended(name: string, token: number): Promise<unknown> {
    return eventually(`the end of ${name} #${token}`, () => scheduler.describe(name), ({ lastRun }) => lastRun?.fencingToken === token && lastRun.status !== 'running');
  }

  beforeEach(async () => {
    keyPrefix = uniquePrefix('checkpoint');
    behaviour.clear();
    app = await boot();
    scheduler = app.get(JobScheduler);
  });

  afterEach(async () => {
    await app.close();
  });

  it("starts the next run from the last run's final state, buffered until the run ends; reads and clears it", async () => {
    const inRun: (LastCheckpoint | null)[] = [];
    behaviour.set('progress', async (ctx) => {
      for (let page = 1; page <= 5; page++) await ctx.checkpoint({ page, cursor: `c${page}` });
      // Five updates, fewer than maxUpdates (100), well within the interval (5 s): all buffered.
      inRun.push(await scheduler.checkpoint('progress'));
    });
    const first = await runOf('progress');
    expect(first.lastCheckpoint).toBeNull();
    await ended('progress', first.fencingToken);
    expect(inRun).toEqual([null]);

    const saved = await scheduler.checkpoint('progress');
    expect(saved).toEqual({ state: { page: 5, cursor: 'c5' }, savedAt: expect.any(Date), fencingToken: first.fencingToken });
    expect(saved!.savedAt.getTime()).toBeGreaterThanOrEqual(first.startedAt.getTime());

    behaviour.set('progress', async () => undefined);
    const second = await runOf('progress');
    expect(second.lastCheckpoint).toEqual(saved);
    await ended('progress', second.fencingToken);
    // A run that does not checkpoint leaves the checkpoint as it was.
    expect(await scheduler.checkpoint('progress')).toEqual(saved);

    await scheduler.clearCheckpoint('progress');
    expect(await scheduler.checkpoint('progress')).toBeNull();
    const third = await runOf('progress');
    expect(third.lastCheckpoint).toBeNull();
    await ended('progress', third.fencingToken);

    await expect(scheduler.checkpoint('nope')).rejects.toThrow(UnknownJobError);
    await expect(scheduler.clearCheckpoint('nope')).rejects.toThrow(UnknownJobError);
  });

  it('flushes after maxUpdates updates, while the run goes on', async () => {
    const twoDone = new Gate();
    const goOn = new Gate();
    const finish = new Gate();
    behaviour.set('batched', async (ctx) => {
      await ctx.checkpoint(1);
      await ctx.checkpoint(2);
      twoDone.release();
      await goOn.passed;
      await ctx.checkpoint(3);
      await finish.passed;
    });
    const run = await runOf('batched');
    await twoDone.passed;
    expect(await scheduler.checkpoint('batched')).toBeNull();
    goOn.release();
    // The third update reaches maxUpdates (3): flushed with the interval (60 s) far off, the run still going.
    const flushed = await eventually('the flush at the third update', () => scheduler.checkpoint('batched'), (c) => c !== null, 5_000);
    expect(flushed).toMatchObject({ state: 3, fencingToken: run.fencingToken });
    expect((await scheduler.describe('batched')).lastRun?.status).toBe('running');
    finish.release();
    await ended('batched', run.fencingToken);
  });

  it('flushes an interval after the first update not yet written', async () => {
    const finish = new Gate();
    let calledAt = 0;
    behaviour.set('timed', async (ctx) => {
      calledAt = Date.now();
      await ctx.checkpoint({ step: 'a' });
      await finish.passed;
    });
    const run = await runOf('timed');
    const flushed = await eventually('the flush after the interval', () => scheduler.checkpoint('timed'), (c) => c !== null, 5_000);
    const waited = Date.now() - calledAt;
    expect(flushed).toMatchObject({ state: { step: 'a' }, fencingToken: run.fencingToken });
    // The interval is 1 s (the least allowed); one update of 1,000 could not have flushed it.
    expect(waited).toBeGreaterThanOrEqual(950);
    expect((await scheduler.describe('timed')).lastRun?.status).toBe('running');
    finish.release();
    await ended('timed', run.fencingToken);
  });

  it('refuses a state with no JSON form or beyond 512 KB, and the run goes on', async () => {
    const refusals: unknown[] = [];
    behaviour.set('progress', async (ctx) => {
      const circular: Record<string, unknown> = {};
      circular.self = circular;
      for (const state of [10n, circular, undefined, 'x'.repeat(MAX_CHECKPOINT_BYTES)]) {
        await ctx.checkpoint(state as never).catch((error: unknown) => refusals.push(error));
      }
      await ctx.checkpoint('fine');
    });
    const run = await runOf('progress');
    await ended('progress', run.fencingToken);
    expect(refusals).toHaveLength(4);
    for (const error of refusals) expect(error).toBeInstanceOf(InvalidCheckpointError);
    expect((refusals[0] as Error).message).toMatch(/^Job "progress": the checkpoint cannot be stored: it is not JSON-serialisable/);
    expect((refusals[3] as Error).message).toMatch(/its JSON is 524290 bytes, more than the 524288 bytes \(512 KB\)/);
    expect((await scheduler.describe('progress')).lastRun?.status).toBe('success');
    expect(await scheduler.checkpoint('progress')).toMatchObject({ state: 'fine' });
  });

  it('refuses the writes of a run fenced off by a newer one, logs it once, and keeps the newer state', async () => {
    const firstFlushed = new Gate();
    const goOn = new Gate();
    behaviour.set('zombie', async (ctx) => {
      await ctx.checkpoint('A1');
      await firstFlushed.passed;
      await goOn.passed;
      for (const state of ['A2', 'A3', 'A4']) await ctx.checkpoint(state);
    });
    const zombie = await runOf('zombie');
    await eventually('the first flush', () => scheduler.checkpoint('zombie'), (c) => c !== null);
    firstFlushed.release();
    // A successor (its replica took the job over while this run was paused) writes with a newer token.
    const successorToken = zombie.fencingToken + 1;
    const coordinator = app.get(Coordinator);
    expect(await coordinator.saveCheckpoint('zombie', successorToken, '"successor"', Date.now())).toEqual({ status: 'saved' });
    goOn.release();
    await ended('zombie', zombie.fencingToken);
    expect(await scheduler.checkpoint('zombie')).toMatchObject({ state: 'successor', fencingToken: successorToken });
    const refused = new RegExp(`^Job "zombie": a checkpoint of the run with fencing token ${zombie.fencingToken} was refused: the job's checkpoint is fenced at token ${successorToken}`);
    expect(logger.count('warn', refused)).toBe(1);
    // The run itself was not failed by it.
    expect((await scheduler.describe('zombie')).lastRun?.status).toBe('success');
  });

  it('flushes what a run buffered when the replica shuts down and aborts it', async () => {
    const buffered = new Gate();
    behaviour.set('held', async (ctx) => {
      for (let n = 1; n <= 3; n++) await ctx.checkpoint({ n });
      buffered.release();
      // Runs until aborted.
      await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
    });
    const run = await runOf('held');
    await buffered.passed;
    const observer = await bootApp({ redis: SHARED_REDIS_URL, keyPrefix, instanceId: 'observer' }, [], logger);
    try {
      const reader = observer.get(JobScheduler);
      expect(await reader.checkpoint('held')).toBeNull();
      await app.close();
      expect(await reader.checkpoint('held')).toMatchObject({ state: { n: 3 }, fencingToken: run.fencingToken });
    } finally {
      await observer.close();
      app = await boot();
    }
  });

  it('validates the checkpoint options at bootstrap, naming the option and the value', async () => {
    const error = await bootApp({ checkpoint: { interval: '100ms' } }, []).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidSchedulerOptionError);
    expect((error as Error).message).toMatch(/^SchedulerModule: option "checkpoint.interval" has an invalid value '100ms': expected a duration from 1 s/);
  });
});

describe('checkpoints on the embedded coordinator', () => {
  it('hands the next run the last run’s state', async () => {
    behaviour.set('progress', async (ctx) => {
      await ctx.checkpoint({ done: ((ctx.lastCheckpoint?.state as { done: number } | undefined)?.done ?? 0) + 1 });
    });
    const app = await bootApp({}, [CheckpointJobs]);
    try {
      const scheduler = app.get(JobScheduler);
      const before = runs.events.length;
      await scheduler.trigger('progress');
      const first = await runs.until('the first run', (events) => events[before]);
      await eventually('its end', () => scheduler.describe('progress'), ({ lastRun }) => lastRun?.status === 'success');
      await scheduler.trigger('progress');
      const second = await runs.until('the second run', (events) => events[before + 1]);
      expect(first.lastCheckpoint).toBeNull();
      expect(second.lastCheckpoint).toMatchObject({ state: { done: 1 }, fencingToken: first.fencingToken });
    } finally {
      await app.close();
    }
  });
});
