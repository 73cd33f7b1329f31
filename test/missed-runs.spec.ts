import { Injectable, INestApplicationContext, Type } from '@nestjs/common';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Test } from '@nestjs/testing';
import { DistributedJob, DistributedJobOptions, JobContext, JobScheduler, SchedulerErrorEvent, SchedulerModule, SnapshotPersister } from '../lib';
import { Schedule } from '../lib/scheduling/schedule';
import { CapturingLogger } from './support/app';
import { SHARED_REDIS_URL, uniquePrefix } from './support/redis-server';
import { cleanupClient, scanKeys } from './support/redis-cleanup';
import { EventLog } from './support/wait';

/**
 * The whole cluster down for several periods, then up again: what runs is exactly what the
 * job's `missed` policy promises, with the due times it serves. The outage is real: the app is
 * closed, the test waits out the gap on the clock (the fault itself), and a new app boots on the
 * same key prefix, as a redeploy after an outage would.
 */
interface Run {
  scheduledAt: number;
  catchUp: boolean;
  start: number;
  end?: number;
}

const EVERY = { every: 500 } as const;
const CRON = { cron: '* * * * * *' } as const;
const periodOf = (schedule: typeof EVERY | typeof CRON) => ('every' in schedule ? schedule.every : 1_000);

const apps: INestApplicationContext[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

/** A job class with these options, recording each run's due time, flag, start and end. */
function jobClass(options: DistributedJobOptions, runs: EventLog<Run>, workMs: number): Type {
  @Injectable()
  class Jobs {
    @DistributedJob({ name: 'job', ...options })
    async run(ctx: JobContext) {
      const run: Run = { scheduledAt: ctx.scheduledAt.getTime(), catchUp: ctx.catchUp, start: Date.now() };
      runs.push(run);
      if (workMs > 0) await new Promise((resolve) => setTimeout(resolve, workMs));
      run.end = Date.now();
    }
  }
  return Jobs;
}

/**
 * Where the cluster keeps its state across the outage: in Redis (`intact`); or lost while it is
 * down and brought back from the snapshot file its last replica wrote at shutdown: on Redis, whose
 * keys are deleted (`redis-lost`), or on the embedded coordinator, whose state dies with the process.
 */
type Coordination = { kind: 'intact' } | { kind: 'redis-lost' | 'embedded'; file: string };

async function boot(keyPrefix: string, jobs: Type, events?: EventLog<SchedulerErrorEvent>, coordination: Coordination = { kind: 'intact' }): Promise<INestApplicationContext> {
  const logger = new CapturingLogger();
  const snapshot = coordination.kind === 'intact' ? {} : { snapshot: { file: coordination.file } };
  const redis = coordination.kind === 'embedded' ? {} : { redis: SHARED_REDIS_URL };
  const app = await Test.createTestingModule({
    imports: [SchedulerModule.forRoot({ ...redis, ...snapshot, keyPrefix, minPeriod: 100, lockTtl: 1_000 })],
    providers: [jobs],
  })
    .setLogger(logger)
    .compile();
  app.useLogger(logger);
  // Subscribed before the loop starts: the first claim may come during bootstrap.
  if (events) app.get(JobScheduler).errors$.subscribe((event) => events.push(event));
  await app.init();
  apps.push(app);
  return app;
}

/**
 * Runs the job on a first app, stops the whole cluster for `downMs`, and boots a second one on
 * the same prefix. Returns the runs before the outage, the runs after it, the `missed` event,
 * and the second app.
 */
async function outage(options: DistributedJobOptions, downMs: number, workMs = 20, coordination: Coordination = { kind: 'intact' }) {
  const keyPrefix = uniquePrefix('missed');
  const before = new EventLog<Run>();
  const first = await boot(keyPrefix, jobClass(options, before, workMs), undefined, coordination);
  await before.until('two runs before the outage', (runs) => runs.length >= 2);
  await first.close();
  apps.splice(apps.indexOf(first), 1);
  const lastBefore = Math.max(...before.events.map((run) => run.scheduledAt));
  if (coordination.kind === 'redis-lost') await deleteKeysOf(keyPrefix);
  // The fault: nobody serves the job for this long.
  await new Promise((resolve) => setTimeout(resolve, downMs));
  const after = new EventLog<Run>();
  const events = new EventLog<SchedulerErrorEvent>();
  const app = await boot(keyPrefix, jobClass(options, after, workMs), events, coordination);
  const event = await events.until('the missed event', (all) => all.find((e) => e.phase === 'missed' && e.job === 'job'));
  return { lastBefore, after, event, app, scheduler: app.get(JobScheduler) };
}

/** Deletes every key of the prefix, as a Redis restarted without persistence would have lost them. */
async function deleteKeysOf(keyPrefix: string): Promise<void> {
  const redis = cleanupClient(SHARED_REDIS_URL);
  try {
    await redis.connect();
    const keys = await scanKeys(redis, `{${keyPrefix}}*`);
    expect(keys.length).toBeGreaterThan(0);
    await redis.del(...keys);
  } finally {
    redis.disconnect();
  }
}

/** The due times of a schedule from `from` (included) up to `to` (included). */
function dueTimes(schedule: typeof EVERY | typeof CRON, from: number, to: number): number[] {
  const times = [from];
  const arithmetic = new Schedule({ ...schedule, jitter: 0 });
  times.push(...arithmetic.latestBases(from, to, 1_000));
  return times;
}

describe.each([
  { kind: 'every', schedule: EVERY, downMs: 2_600 },
  { kind: 'cron', schedule: CRON, downMs: 4_300 },
])('the whole cluster down for several periods ($kind)', ({ schedule, downMs }) => {
  jest.setTimeout(60_000);
  const period = periodOf(schedule);
  const next = (at: number) => new Schedule({ ...schedule, jitter: 0 }).nextBase(at, at);

  it("skip: none of the missed due times runs; the cadence resumes at the next one, and they are counted", async () => {
    const { lastBefore, after, event, scheduler } = await outage({ ...schedule, missed: 'skip' }, downMs);
    const missed = event.missed!;
    // The first due time missed is the one after the last run: no due time is lost silently.
    expect(missed.from.getTime()).toBe(next(lastBefore));
    expect(missed).toMatchObject({ policy: 'skip', skipped: missed.count, catchUpRuns: 0, runningFrom: null, exact: true });
    expect(dueTimes(schedule, missed.from.getTime(), missed.to.getTime())).toHaveLength(missed.count);
    expect(missed.count).toBeGreaterThanOrEqual(Math.floor(downMs / period) - 1);
    expect(event.error.message).toMatch(new RegExp(`^Job "job": ${missed.count} fires missed between .* \\(missed: 'skip'\\): none runs; next run at`));
    await after.until('two runs after the outage', (runs) => runs.length >= 2);
    const [firstAfter, secondAfter] = after.events;
    expect(firstAfter).toMatchObject({ scheduledAt: next(missed.to.getTime()), catchUp: false });
    expect(secondAfter).toMatchObject({ scheduledAt: next(firstAfter.scheduledAt), catchUp: false });
    expect(await scheduler.describe('job')).toMatchObject({ skippedMissed: missed.count, catchUpRuns: 0 });
  });

  it('once: one catch-up run for the latest missed due time; the others are counted; then the cadence', async () => {
    const { lastBefore, after, event, scheduler } = await outage({ ...schedule, missed: 'once' }, downMs);
    const missed = event.missed!;
    expect(missed.from.getTime()).toBe(next(lastBefore));
    expect(missed).toMatchObject({ policy: 'once', skipped: missed.count - 1, catchUpRuns: 1, runningFrom: missed.to });
    expect(event.error.message).toMatch(
      new RegExp(`^Job "job": ${missed.count} fires missed between .* \\(missed: 'once'\\): running the one due at ${missed.to.toISOString()}; the other ${missed.count - 1} skipped\\.$`),
    );
    await after.until('the catch-up run and two runs on the cadence', (runs) => runs.length >= 3);
    const [catchUp, ...cadence] = after.events;
    expect(catchUp).toMatchObject({ scheduledAt: missed.to.getTime(), catchUp: true });
    expect(cadence[0]).toMatchObject({ scheduledAt: next(missed.to.getTime()), catchUp: false });
    expect(cadence[1]).toMatchObject({ scheduledAt: next(cadence[0].scheduledAt), catchUp: false });
    const described = await scheduler.describe('job');
    expect(described).toMatchObject({ skippedMissed: missed.count - 1, catchUpRuns: 1 });
  });

  it('all: one run per missed due time, oldest first, one at a time; then the cadence', async () => {
    // Each run takes 150 ms, so that two catch-up runs would overlap if they were started together.
    const { lastBefore, after, event, scheduler } = await outage({ ...schedule, missed: 'all' }, downMs, 150);
    const missed = event.missed!;
    expect(missed.from.getTime()).toBe(next(lastBefore));
    expect(missed).toMatchObject({ policy: 'all', skipped: 0, catchUpRuns: missed.count, runningFrom: missed.from });
    expect(event.error.message).toMatch(new RegExp(`\\(missed: 'all'\\): running ${missed.count} of them one at a time, oldest first, from the one due at ${missed.from.toISOString()}; none skipped`));
    // Three on the cadence: the catch-up runs and the first of those have ended by then (none overlaps).
    await after.until('the catch-up runs and three runs on the cadence', (runs) => runs.filter((run) => !run.catchUp).length >= 3);
    after.events.pop();
    const catchUps = after.events.filter((run) => run.catchUp);
    // Every due time from the first missed one on runs exactly once, in order: the catch-up runs
    // (those that came during the catch-up join it), then the cadence, with no gap.
    const all = after.events.map((run) => run.scheduledAt);
    expect(all).toEqual(dueTimes(schedule, missed.from.getTime(), all[all.length - 1]));
    expect(catchUps.length).toBeGreaterThanOrEqual(missed.count);
    expect(after.events.slice(0, catchUps.length).every((run) => run.catchUp)).toBe(true);
    // One at a time: each catch-up run starts after the previous one ended.
    for (let i = 1; i < catchUps.length; i++) expect(catchUps[i].start).toBeGreaterThanOrEqual(catchUps[i - 1].end!);
    const firstOnCadence = after.events[catchUps.length];
    expect(firstOnCadence.start).toBeGreaterThanOrEqual(catchUps[catchUps.length - 1].end!);
    expect(await scheduler.describe('job')).toMatchObject({ skippedMissed: 0, catchUpRuns: catchUps.length });
  });
});

describe('the limits of a catch-up (every 500 ms, down 3 s)', () => {
  jest.setTimeout(60_000);
  const period = 500;

  it('all with maxCatchUp 2: the latest two missed due times run, the older ones are counted', async () => {
    const { after, event, scheduler } = await outage({ every: period, missed: 'all', maxCatchUp: 2 }, 3_000);
    const missed = event.missed!;
    expect(missed.count).toBeGreaterThanOrEqual(5);
    expect(missed).toMatchObject({ skipped: missed.count - 2, catchUpRuns: 2, runningFrom: new Date(missed.to.getTime() - period) });
    expect(event.error.message).toMatch(new RegExp(`${missed.count - 2} skipped \\(the catch-up window of 24h, maxCatchUp 2\\)`));
    await after.until('the catch-up runs and a run on the cadence', (runs) => runs.some((run) => !run.catchUp));
    const catchUps = after.events.filter((run) => run.catchUp).map((run) => run.scheduledAt);
    expect(catchUps.slice(0, 2)).toEqual([missed.to.getTime() - period, missed.to.getTime()]);
    expect((await scheduler.describe('job')).skippedMissed).toBeGreaterThanOrEqual(missed.count - 2);
  });

  it('all with a catch-up window of 1.2 s: only the due times within it run', async () => {
    const { after, event } = await outage({ every: period, missed: 'all', catchUpWindow: 1_200 }, 3_000);
    const missed = event.missed!;
    const claimedAt = event.at.getTime();
    const firstRun = missed.runningFrom!.getTime();
    // The oldest run is within the window of the claim (Redis's clock is this machine's), the one before it is not.
    expect(firstRun).toBeGreaterThanOrEqual(claimedAt - 1_200 - 50);
    expect(firstRun - period).toBeLessThan(claimedAt - 1_200 + 50);
    expect(missed.skipped).toBe(missed.count - missed.catchUpRuns);
    expect(missed.catchUpRuns).toBeGreaterThanOrEqual(2);
    expect(missed.catchUpRuns).toBeLessThanOrEqual(3);
    await after.until('the catch-up runs', (runs) => runs.filter((run) => run.catchUp).length >= missed.catchUpRuns);
    expect(after.events[0]).toMatchObject({ scheduledAt: firstRun, catchUp: true });
  });

  it('once with a window shorter than the outage: nothing runs for a due time older than it', async () => {
    const { after, event } = await outage({ every: period, missed: 'once', catchUpWindow: 100 }, 2_000);
    const missed = event.missed!;
    // The latest missed due time came less than a period ago, but more than 100 ms ago only if the claim was that late:
    // either it runs (within the window) or nothing does; never an older one.
    await after.until('a run', (runs) => runs.length >= 1);
    const [firstAfter] = after.events;
    if (firstAfter.catchUp) expect(firstAfter.scheduledAt).toBe(missed.to.getTime());
    else expect(missed).toMatchObject({ skipped: missed.count, catchUpRuns: 0 });
    expect(after.events.every((run) => run.scheduledAt >= missed.to.getTime())).toBe(true);
  });
});

describe.each([
  { kind: 'embedded' as const, where: 'the embedded coordinator restarted' },
  { kind: 'redis-lost' as const, where: 'Redis lost its keys while the cluster was down' },
])('the whole cluster down and its state lost ($where): restored from the final snapshot, then the policy', ({ kind }) => {
  jest.setTimeout(60_000);
  const next = (at: number) => new Schedule({ ...EVERY, jitter: 0 }).nextBase(at, at);
  let dir: string;
  let coordination: Coordination;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'dsched-missed-'));
    coordination = { kind, file: join(dir, 'scheduler.json') };
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('once: the last replica wrote a final snapshot; the latest missed due time runs once, from the restored state', async () => {
    const { lastBefore, after, event, app } = await outage({ ...EVERY, missed: 'once' }, 2_600, 20, coordination);
    const missed = event.missed!;
    // Served as it was at shutdown: the due times from the one after the last run are the missed ones, none skipped silently.
    expect(missed.from.getTime()).toBe(next(lastBefore));
    expect(missed).toMatchObject({ policy: 'once', skipped: missed.count - 1, catchUpRuns: 1, runningFrom: missed.to });
    await after.until('the catch-up run and a run on the cadence', (runs) => runs.length >= 2);
    expect(after.events[0]).toMatchObject({ scheduledAt: missed.to.getTime(), catchUp: true });
    expect(after.events[1]).toMatchObject({ scheduledAt: next(missed.to.getTime()), catchUp: false });
    expect(app.get(SnapshotPersister).status()).toMatchObject({ restores: 1 });
    // Runs started again: the final snapshot was replaced before the first claim by one that is not final.
    expect(JSON.parse(readFileSync(coordination.kind !== 'intact' ? coordination.file : '', 'utf8'))).toMatchObject({ final: false });
  });

  it('all: every missed due time runs once, oldest first, then the cadence with no gap', async () => {
    const { lastBefore, after, event } = await outage({ ...EVERY, missed: 'all' }, 2_600, 20, coordination);
    const missed = event.missed!;
    expect(missed.from.getTime()).toBe(next(lastBefore));
    expect(missed).toMatchObject({ policy: 'all', skipped: 0, catchUpRuns: missed.count });
    await after.until('the catch-up runs and a run on the cadence', (runs) => runs.some((run) => !run.catchUp));
    const all = after.events.map((run) => run.scheduledAt);
    expect(all).toEqual(dueTimes(EVERY, missed.from.getTime(), all[all.length - 1]));
  });
});
