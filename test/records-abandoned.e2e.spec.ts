import { Injectable, INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource as TypeOrmDataSource } from 'typeorm';
import { DistributedJob, JobContext, SchedulerModuleOptions, SchedulerModule } from '../lib';
import Redis from 'ioredis';
import { Coordinator } from '../lib/coordination/coordinator.interface';
import { Execution, ExecutionManager, SweepManager, Task, TaskManager } from '../lib/records';
import { ABANDONED_MARGIN_MS, ABANDONED_RUN_MESSAGE } from '../lib/execution/sweep.manager';
import { RecordsReplica } from './support/records-replica';
import { CapturingLogger } from './support/app';
import { TestDatabase, TestDatabaseKind } from './support/databases';
import { SHARED_REDIS_URL, uniquePrefix } from './support/redis-server';
import { EventLog } from './support/wait';

/**
 * A replica killed (SIGKILL) in the middle of its runs leaves their tasks and executions Running:
 * the sweep, run by another app on the same coordinator and database once the runs' leases have
 * expired, ends them as Error; a run whose lease another app still holds is left alone.
 */
const LOCK_TTL = 1_000;

let release: () => void = () => undefined;
let released = new Promise<void>((resolve) => (release = resolve));
const held = new EventLog<number>();

@Injectable()
class HeldJobs {
  /** A long handler: runs until the test releases it. */
  @DistributedJob({ name: 'held', vendorType: 'held' })
  async held(ctx: JobContext) {
    held.push(ctx.taskId!);
    await released;
  }
}

async function bootApp(db: TestDatabase, scheduler: SchedulerModuleOptions, synchronize: boolean, logger = new CapturingLogger()): Promise<INestApplicationContext> {
  const moduleRef = await Test.createTestingModule({
    imports: [
      TypeOrmModule.forRoot({ ...db.options, autoLoadEntities: true, synchronize }),
      SchedulerModule.forRoot({ ...scheduler, lockTtl: LOCK_TTL, shutdownTimeout: 1_000, records: { sweepEvery: false } }),
    ],
    providers: [HeldJobs],
  })
    .setLogger(logger)
    .compile();
  return moduleRef.init();
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Long enough after `since` that a run started then, whose lease is gone, is past the sweep's margin. */
const pastTheMargin = (since: number) => sleep(Math.max(0, since + LOCK_TTL + ABANDONED_MARGIN_MS + 500 - Date.now()));

const CASES: { coordinator: string; kind: TestDatabaseKind; scheduler: () => SchedulerModuleOptions }[] = [
  { coordinator: 'Redis', kind: 'postgres', scheduler: () => ({ redis: SHARED_REDIS_URL, keyPrefix: uniquePrefix('abandoned') }) },
  { coordinator: 'the embedded coordinator', kind: 'sqlite', scheduler: () => ({}) },
];

describe.each(CASES)('tasks a killed replica left Running, on $coordinator ($kind)', ({ coordinator, kind, scheduler }) => {
  let db: TestDatabase;
  const apps: INestApplicationContext[] = [];
  let replica: RecordsReplica | undefined;

  beforeAll(async () => {
    released = new Promise<void>((resolve) => (release = resolve));
    db = await TestDatabase.create(kind);
  });

  afterAll(async () => {
    release();
    await replica?.kill();
    for (const app of apps.reverse()) await app.close();
    await db?.drop();
  });

  it('the sweep ends them as Error once no replica holds their runs, and leaves a run still held alone', async () => {
    const options = scheduler();
    const onRedis = coordinator === 'Redis';
    // The tables first, by this process, before the replica (which does not synchronize) starts.
    let sweeper = await bootApp(db, options, true);
    if (onRedis) apps.push(sweeper);
    else await sweeper.close();
    replica = await RecordsReplica.start({ LOCK_TTL: String(LOCK_TTL), DB_OPTIONS: JSON.stringify(db.options), ...(onRedis ? { REDIS_URL: SHARED_REDIS_URL, KEY_PREFIX: options.keyPrefix! } : {}) });
    await replica.call('trigger');
    await replica.call('task');
    const [run, task] = await replica.runs.until('both runs to start', (runs) => runs.length >= 2 && runs);

    let holder: INestApplicationContext;
    if (onRedis) {
      // Another app on the same Redis runs a long handler: its lease lives throughout.
      holder = await bootApp(db, options, false);
      apps.push(holder);
      await replica.kill();
    } else {
      // The embedded coordinator lives in one process: the sweeping app is the next life of the
      // killed one, and the run still held is its own.
      await replica.kill();
      sweeper = holder = await bootApp(db, options, false);
      apps.push(sweeper);
    }
    const heldTask = await holder.get(TaskManager).create(await holder.get(ExecutionManager).create('held', null, 'MANUAL'), { name: 'held' });
    await held.until('the held task to run', (ids) => ids.includes(heldTask));
    const heldSince = Date.now();

    const executions = sweeper.get(ExecutionManager);
    const tasks = sweeper.get(TaskManager);
    const sweep = sweeper.get(SweepManager);
    for (const { taskId, executionId } of [run, task]) {
      expect(await tasks.get(taskId)).toMatchObject({ status: 'Running' });
      expect(await executions.get(executionId)).toMatchObject({ status: 'Running' });
    }
    // Killed a moment ago: its runs are too recent (on Redis, their leases may even still live).
    expect(await sweep.fixAbandonedTasks()).toBe(0);

    // Past the margin for the held run too, so that only its lease keeps it from being ended.
    await pastTheMargin(heldSince);
    expect(await sweep.fixDanglingStateExecution()).toBeGreaterThanOrEqual(2);
    for (const { taskId, executionId } of [run, task]) {
      expect(await tasks.get(taskId)).toMatchObject({ status: 'Error', statusMessage: ABANDONED_RUN_MESSAGE, endTime: expect.any(Date) });
      expect(await executions.get(executionId)).toMatchObject({ status: 'Error', endTime: expect.any(Date) });
    }
    // A single-task execution carries its task's message.
    expect(await executions.get(run.executionId)).toMatchObject({ statusMessage: ABANDONED_RUN_MESSAGE });
    expect(await tasks.get(heldTask)).toMatchObject({ status: 'Running', statusMessage: null });

    // Swept again: nothing more to end, and the held run ends as its replica reports it.
    expect(await sweep.fixAbandonedTasks()).toBe(0);
    release();
    await waitFor(async () => (await tasks.get(heldTask)).status === 'Success');
  }, 60_000);
});

describe('tasks left Running while the coordinator is unreachable (Redis)', () => {
  let db: TestDatabase;
  let app: INestApplicationContext | undefined;
  let redis: Redis | undefined;

  afterAll(async () => {
    await app?.close();
    redis?.disconnect();
    await db?.drop();
  });

  it('are not ended while the coordinator does not answer (logged once per sweep), and are once it does', async () => {
    db = await TestDatabase.create('sqlite');
    // A client of the test's own, passed as `redis`: the library never closes it, the test cuts it.
    redis = new Redis(SHARED_REDIS_URL);
    const logger = new CapturingLogger();
    app = await bootApp(db, { redis, keyPrefix: uniquePrefix('abandoned-outage') }, true, logger);
    const coordinator = app.get(Coordinator);
    const sweep = app.get(SweepManager);
    const dayAgo = new Date(Date.now() - 24 * 3_600_000);
    const executionId = await app.get(ExecutionManager).create('held', null, 'MANUAL');
    // Its run's fencing token is one no lease has: its replica is gone.
    const inserted = await app.get(TypeOrmDataSource).getRepository(Task).insert({
      vendorType: 'held', executionId, jobName: 'held', parameters: {}, status: 'Running', statusMessage: null, runCount: 1, jobId: `lost-${Math.random()}`,
      extraAttrs: {}, creationTime: dayAgo, startTime: dayAgo, updateTime: dayAgo, endTime: null, statusRevision: 1, fencingToken: 1,
    });
    const taskId = inserted.identifiers[0].id as number;
    const tasks = app.get(TaskManager);

    redis.disconnect();
    await waitFor(async () => !coordinator.isAvailable());
    expect(await sweep.fixDanglingStateExecution()).toBe(0);
    expect(await tasks.get(taskId)).toMatchObject({ status: 'Running' });
    expect(await app.get(ExecutionManager).get(executionId)).toMatchObject({ status: 'Running' });
    expect(logger.count('warn', /Abandoned tasks are not looked for in this sweep .*unreachable/)).toBe(1);

    await redis.connect();
    await waitFor(async () => coordinator.isAvailable());
    expect(await sweep.fixAbandonedTasks()).toBe(1);
    expect(await tasks.get(taskId)).toMatchObject({ status: 'Error', statusMessage: ABANDONED_RUN_MESSAGE });
    expect(await app.get(TypeOrmDataSource).getRepository(Execution).findOneByOrFail({ id: executionId })).toMatchObject({ status: 'Error' });
    expect(logger.count('warn', /Abandoned tasks are not looked for/)).toBe(1);
  });
});

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('Timed out waiting for a condition');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
