import { Injectable, INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule, TypeOrmModuleOptions } from '@nestjs/typeorm';
import { randomBytes } from 'node:crypto';
import { DataSource, DataSourceOptions } from 'typeorm';
import { DistributedJob, JobContext, JobScheduler, SchedulerModule, SchedulerModuleOptions } from '../lib';
import { ExecutionManager, TaskManager, VendorHookRegistry } from '../lib/records';
import { CapturingLogger } from './support/app';
import { TestDatabase } from './support/databases';
import { EventLog } from './support/wait';

/** Due times the job's handler ran for, and due times whose execution was written as ended. */
const fires = new EventLog<number>();
const recordedEnds = new EventLog<number>();

@Injectable()
class Heartbeat {
  @DistributedJob({ name: 'heartbeat', every: 150 })
  beat(ctx: JobContext) {
    fires.push(ctx.scheduledAt.getTime());
  }
}

/** The task ids of the `progress` runs that flushed their first checkpoint; the test then lets them go on. */
const progressRuns = new EventLog<number>();
let goOn!: () => void;

@Injectable()
class Progress {
  /** Flushes a checkpoint at once, waits for the test, flushes a second and ends. */
  @DistributedJob({ name: 'progress', checkpoint: { maxUpdates: 1 } })
  async progress(ctx: JobContext) {
    const proceed = new Promise<void>((resolve) => (goOn = resolve));
    await ctx.checkpoint({ step: 1 });
    progressRuns.push(ctx.taskId!);
    await proceed;
    await ctx.checkpoint({ step: 2 });
  }
}

/** Attempts of `fanned` tasks that ran their handler; `blocker` holds the replica's one worker slot until released. */
const fannedRuns = new EventLog<{ taskId: number; attempt: number }>();
const blockerRuns = new EventLog<number>();
let releaseBlocker!: () => void;

@Injectable()
class Fanned {
  @DistributedJob({ name: 'blocker' })
  async block(ctx: JobContext) {
    const released = new Promise<void>((resolve) => (releaseBlocker = resolve));
    blockerRuns.push(ctx.taskId!);
    await released;
  }

  @DistributedJob({ name: 'fanned', retry: { attempts: 3, backoff: { delay: 300 } } })
  fanned(ctx: JobContext) {
    fannedRuns.push({ taskId: ctx.taskId!, attempt: ctx.attempt });
  }
}

async function bootRecordedHeartbeat(typeorm: TypeOrmModuleOptions, scheduler: SchedulerModuleOptions, logger: CapturingLogger): Promise<INestApplicationContext> {
  const moduleRef = await Test.createTestingModule({
    imports: [TypeOrmModule.forRoot(typeorm), SchedulerModule.forRoot({ ...scheduler, minPeriod: 100, records: { sweepEvery: false } })],
    providers: [Heartbeat, Progress, Fanned],
  })
    .setLogger(logger)
    .compile();
  moduleRef.useLogger(logger);
  moduleRef.get(VendorHookRegistry).onExecutionStatusChange('heartbeat', (execution) => recordedEnds.push(execution.dueAt!.getTime()));
  return moduleRef.init();
}

/** Stops the job, waits until every run it made is recorded as ended, and checks each is there once, as Success. */
async function expectEveryRunRecordedOnce(app: INestApplicationContext): Promise<void> {
  await app.get(JobScheduler).pause('heartbeat');
  const ran = [...fires.events];
  await recordedEnds.until('every run recorded as ended', (ends) => ran.every((due) => ends.includes(due)));
  const recorded = await app.get(ExecutionManager).list({ jobName: 'heartbeat', pageSize: 1_000 });
  const dues = recorded.map((execution) => execution.dueAt!.getTime());
  expect(new Set(dues).size).toBe(dues.length);
  expect(dues).toEqual(expect.arrayContaining(ran));
  expect(recorded.filter((execution) => ran.includes(execution.dueAt!.getTime())).every((execution) => execution.status === 'Success')).toBe(true);
}

describe('execution records on a database that fails', () => {
  let db: TestDatabase;
  let admin: DataSource;
  let app: INestApplicationContext | undefined;
  let logger: CapturingLogger;

  beforeEach(async () => {
    db = await TestDatabase.create('postgres');
    admin = new DataSource({ ...db.options } as DataSourceOptions);
    await admin.initialize();
    logger = new CapturingLogger();
    fires.events.length = 0;
    fannedRuns.events.length = 0;
    blockerRuns.events.length = 0;
    recordedEnds.events.length = 0;
  });

  afterEach(async () => {
    await app?.close();
    await admin.destroy();
    await db.drop();
  });

  /** The app connects as a role of its own, whose logins the test revokes (ending its sessions) and restores. */
  it('keeps scheduling while it is unreachable, logs the outage once, and writes every run once it is back', async () => {
    const role = `dsched_app_${randomBytes(3).toString('hex')}`;
    await admin.query(`CREATE ROLE ${role} LOGIN`);
    await admin.query(`ALTER DATABASE ${db.options.database} OWNER TO ${role}`);
    try {
      app = await bootRecordedHeartbeat({ ...db.options, username: role, autoLoadEntities: true, synchronize: true, extra: { connectionTimeoutMillis: 1_000 } } as TypeOrmModuleOptions, {}, logger);
      await fires.until('runs before the outage', (events) => events.length >= 3);
      await admin.query(`ALTER ROLE ${role} NOLOGIN`);
      await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, [role]);
      await logger.until('error', /database is unreachable/);
      const firesAtOutage = fires.events.length;
      await fires.until('runs during the outage', (events) => events.length >= firesAtOutage + 6);
      await admin.query(`ALTER ROLE ${role} LOGIN`);
      await logger.until('log', /database is reachable again/);

      await expectEveryRunRecordedOnce(app);
      expect(logger.count('error', /database is unreachable/)).toBe(1);
      expect(app.get(ExecutionManager).recordingStatus()).toMatchObject({ databaseReachable: true, waitingWrites: 0, duplicatesCaught: 0 });
    } finally {
      await app?.close();
      app = undefined;
      await admin.query(`ALTER ROLE ${role} LOGIN`);
      await admin.query(`REASSIGN OWNED BY ${role} TO postgres`);
      await admin.query(`DROP ROLE ${role}`);
    }
  });

  /** As above; the job's second checkpoint flush comes while the database is away. */
  it("writes a checkpoint flushed while it is unreachable on the run's task once it is back", async () => {
    const role = `dsched_app_${randomBytes(3).toString('hex')}`;
    await admin.query(`CREATE ROLE ${role} LOGIN`);
    await admin.query(`ALTER DATABASE ${db.options.database} OWNER TO ${role}`);
    try {
      app = await bootRecordedHeartbeat({ ...db.options, username: role, autoLoadEntities: true, synchronize: true, extra: { connectionTimeoutMillis: 1_000 } } as TypeOrmModuleOptions, {}, logger);
      const scheduler = app.get(JobScheduler);
      const tasks = app.get(TaskManager);
      // Only this job's writes meet the outage.
      await scheduler.pause('heartbeat');
      expect((await scheduler.trigger('progress')).status).toBe('accepted');
      const taskId = await progressRuns.until('the first checkpoint flushed', (ids) => ids[0]);
      const rowOf = async () => {
        const [row] = (await admin.query(`SELECT checkpoint_state, checkpoint_saved_at, status FROM dsched_task WHERE id = $1`, [taskId])) as { checkpoint_state: string | null; checkpoint_saved_at: Date | null; status: string }[];
        return row;
      };
      await waitFor(async () => (await rowOf()).checkpoint_state === '{"step":1}');

      await admin.query(`ALTER ROLE ${role} NOLOGIN`);
      await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, [role]);
      goOn();
      await logger.until('error', /database is unreachable/);
      const last = await scheduler.checkpoint('progress');
      expect(last).toMatchObject({ state: { step: 2 } });
      // Redis has it; the task row waits for the database.
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(await rowOf()).toMatchObject({ checkpoint_state: '{"step":1}', status: 'Running' });

      await admin.query(`ALTER ROLE ${role} LOGIN`);
      await logger.until('log', /database is reachable again/);
      await waitFor(async () => (await rowOf()).status === 'Success');
      expect(await tasks.get(taskId)).toMatchObject({ status: 'Success', checkpointState: { step: 2 }, checkpointSavedAt: last!.savedAt });
      expect(logger.count('error', /checkpoint .* could not be recorded/)).toBe(0);
    } finally {
      await app?.close();
      app = undefined;
      await admin.query(`ALTER ROLE ${role} LOGIN`);
      await admin.query(`REASSIGN OWNED BY ${role} TO postgres`);
      await admin.query(`DROP ROLE ${role}`);
    }
  });

  it('fails the attempt of a task whose records are late at its start (a row lock held), and retries it: it runs once, Success', async () => {
    // One worker slot, so the task waits behind the blocker until the test holds its execution's row.
    app = await bootRecordedHeartbeat({ ...db.options, autoLoadEntities: true, synchronize: true } as TypeOrmModuleOptions, { lockTtl: 1_500, worker: { concurrency: 1 } }, logger);
    await app.get(JobScheduler).pause('heartbeat');
    const executions = app.get(ExecutionManager);
    const tasks = app.get(TaskManager);
    await tasks.create(await executions.create('blocker', null, 'MANUAL'), { name: 'blocker' });
    await blockerRuns.until('the blocker running', (ids) => ids.length === 1);
    const executionId = await executions.create('fanned', null, 'MANUAL');
    const taskId = await tasks.create(executionId, { name: 'fanned' });

    const locker = admin.createQueryRunner();
    await locker.startTransaction();
    await locker.query('SELECT id FROM dsched_execution WHERE id = $1 FOR UPDATE', [executionId]);
    releaseBlocker();
    // Its start waits for the row past min(5 s, lockTtl / 3): the attempt fails, its retry is due in 300 ms.
    await logger.until('error', /Job "fanned": its records did not answer in time; it does not run\./);
    await locker.commitTransaction();
    await locker.release();

    await waitFor(async () => (await tasks.get(taskId)).status === 'Success');
    expect(fannedRuns.events).toEqual([{ taskId, attempt: 2 }]);
    expect(await tasks.get(taskId)).toMatchObject({ status: 'Success', runCount: 2 });
    expect((await executions.get(executionId)).status).toBe('Success');
  });

  /** A lock the test holds makes every insert wait: the database hangs instead of failing. */
  it('runs the fires without waiting for records that hang, and ends the records once they are written', async () => {
    app = await bootRecordedHeartbeat({ ...db.options, autoLoadEntities: true, synchronize: true } as TypeOrmModuleOptions, { lockTtl: 1_500 }, logger);
    await recordedEnds.until('a recorded run', (ends) => ends.length >= 1);
    const locker = admin.createQueryRunner();
    await locker.startTransaction();
    await locker.query('LOCK TABLE dsched_execution IN ACCESS EXCLUSIVE MODE');
    const firesAtLock = fires.events.length;
    await logger.until('error', /records did not answer in time; it runs unrecorded/);
    await fires.until('runs while the database hangs', (events) => events.length >= firesAtLock + 3);
    await locker.commitTransaction();
    await locker.release();

    await expectEveryRunRecordedOnce(app);
  });
});

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('Timed out waiting for a condition');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
