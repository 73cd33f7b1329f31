import 'reflect-metadata';
import { Injectable, INestApplicationContext } from '@nestjs/common';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DistributedJob, JobContext, JobScheduler, SnapshotPersister } from '../lib';
import { bootApp, CapturingLogger } from './support/app';
import { TestRedisServer, uniquePrefix } from './support/redis-server';
import { EventLog } from './support/wait';

interface Run {
  instanceId: string;
  scheduledAt: number;
  fencingToken: number;
}

const runs = new EventLog<Run>();

@Injectable()
class ClusterJobs {
  @DistributedJob({ name: 'tick', every: 1000 })
  tick(ctx: JobContext) {
    runs.push({ instanceId: ctx.instanceId, scheduledAt: ctx.scheduledAt.getTime(), fencingToken: ctx.fencingToken });
  }

  @DistributedJob({ name: 'report', every: '1h' })
  report() {}

  @DistributedJob({ name: 'cleanup', every: '1h' })
  cleanup() {}

  @DistributedJob({ name: 'export', every: '1h' })
  export() {}
}

/**
 * Redis losing its state (FLUSHALL, a restart without persistence) with snapshots on: the runtime
 * changes come back from the newest snapshot, restored once by one replica, no due time runs
 * twice and fencing tokens keep increasing. Three apps on a redis-server of the test's own.
 */
describe('snapshots when Redis loses its state', () => {
  jest.setTimeout(120_000);
  let server: TestRedisServer;
  let dir: string;
  let file: string;
  let keyPrefix: string;
  const apps: INestApplicationContext[] = [];
  const loggers: CapturingLogger[] = [];

  beforeEach(async () => {
    server = await TestRedisServer.reserve();
    await server.start();
    dir = mkdtempSync(join(tmpdir(), 'dsched-snap-'));
    file = join(dir, 'scheduler.json');
    keyPrefix = uniquePrefix('snap');
    runs.events.length = 0;
  });

  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close().catch(() => undefined)));
    loggers.length = 0;
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function boot(instanceId: string): Promise<INestApplicationContext> {
    const logger = new CapturingLogger();
    loggers.push(logger);
    const app = await bootApp({ redis: server.url, keyPrefix, instanceId, shutdownTimeout: 1_000, snapshot: { file, every: '1h' } }, [ClusterJobs], logger);
    apps.push(app);
    return app;
  }

  const restoredLines = () => loggers.flatMap((logger) => logger.lines.filter((line) => line.level === 'warn' && /^Restored \d+ job\(s\)/.test(line.message)));

  async function afterNextTick(delayMs: number): Promise<void> {
    const seen = runs.events.length;
    await runs.until('the next run of tick', (events) => events.length > seen, 20_000);
    await new Promise((resolve) => setTimeout(resolve, delayMs));
  }

  function expectEachDueTimeOnceWithIncreasingTokens(): void {
    const all = [...runs.events].sort((a, b) => a.scheduledAt - b.scheduledAt);
    const twice = all.filter((run, i) => i > 0 && run.scheduledAt === all[i - 1].scheduledAt);
    expect(twice).toEqual([]);
    for (let i = 1; i < all.length; i++) expect(all[i].fencingToken).toBeGreaterThan(all[i - 1].fencingToken);
  }

  async function changeAndSnapshot(): Promise<JobScheduler> {
    const [a, b, c] = await Promise.all(['r1', 'r2', 'r3'].map((id) => boot(id)));
    await afterNextTick(0);
    await a.get(JobScheduler).pause('report');
    await b.get(JobScheduler).updateSchedule('cleanup', { every: '2h' });
    await c.get(JobScheduler).lock('export', { holder: 'ops' });
    expect(await b.get(SnapshotPersister).save()).toBe(true);
    return a.get(JobScheduler);
  }

  async function expectRuntimeStateBack(scheduler: JobScheduler): Promise<void> {
    await restoredLinesUntil(1);
    // After a restart, this app may still be reconnecting.
    const deadline = Date.now() + 20_000;
    while (!(await scheduler.ping().then(() => true, () => false)) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await scheduler.describe('report')).toMatchObject({ paused: true, nextRunAt: null });
    expect(await scheduler.describe('cleanup')).toMatchObject({ schedule: { every: 7_200_000 }, scheduleOverridden: true });
    expect((await scheduler.describe('export')).locked).toEqual({ by: 'ops', until: null });
    const lost = Date.now();
    await runs.until('two runs after the loss', (events) => events.filter((run) => run.scheduledAt > lost).length >= 2, 20_000);
    expectEachDueTimeOnceWithIncreasingTokens();
    // One replica restored, and said so once.
    expect(restoredLines()).toHaveLength(1);
    expect(restoredLines()[0].message).toMatch(/^Restored 5 job\(s\) that the coordinator had lost from the snapshot written at \S+ by "r2" \(file ".*scheduler.json"\): .*"report" \(paused, no scheduled run\)/);
    const statuses = apps.map((app) => app.get(SnapshotPersister).status());
    expect(statuses.reduce((sum, status) => sum + status.restores, 0)).toBe(1);
  }

  async function restoredLinesUntil(count: number): Promise<void> {
    const deadline = Date.now() + 20_000;
    while (restoredLines().length < count && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  }

  it('restores paused, rescheduled and locked jobs after FLUSHALL, once, and runs no due time twice', async () => {
    const scheduler = await changeAndSnapshot();
    await afterNextTick(20 + Math.floor(Math.random() * 61));
    const admin = server.client();
    try {
      await admin.flushall();
    } finally {
      admin.disconnect();
    }
    await expectRuntimeStateBack(scheduler);
  });

  it('restores them after Redis restarts empty', async () => {
    const scheduler = await changeAndSnapshot();
    await afterNextTick(20 + Math.floor(Math.random() * 61));
    await server.stop();
    await server.start();
    await expectRuntimeStateBack(scheduler);
  });

  it('restores once when two replicas boot together on an empty Redis', async () => {
    const first = await boot('r1');
    await first.get(JobScheduler).pause('report');
    await first.close(); // writes a last snapshot
    apps.splice(0);
    const admin = server.client();
    try {
      await admin.flushall();
    } finally {
      admin.disconnect();
    }
    loggers.length = 0;
    const [a, b] = await Promise.all([boot('r2'), boot('r3')]);
    expect(restoredLines()).toHaveLength(1);
    expect(a.get(SnapshotPersister).status().restores + b.get(SnapshotPersister).status().restores).toBe(1);
    expect(await a.get(JobScheduler).describe('report')).toMatchObject({ paused: true });
    expect(await b.get(JobScheduler).describe('report')).toMatchObject({ paused: true });
  });
});
