import { Injectable, INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule, TypeOrmModuleOptions } from '@nestjs/typeorm';
import { randomBytes } from 'node:crypto';
import { DataSource, DataSourceOptions } from 'typeorm';
import { DistributedJob, ExecutionManager, JobContext, JobScheduler, SchedulerModule, VendorHookRegistry } from '../lib';
import { CapturingLogger } from './support/app';
import { TestDatabase } from './support/databases';
import { EventLog } from './support/wait';

const fires = new EventLog<number>();
/** Due times whose execution was written as ended. */
const recordedEnds = new EventLog<number>();

@Injectable()
class Heartbeat {
  @DistributedJob({ name: 'heartbeat', every: 100 })
  beat(ctx: JobContext) {
    fires.push(ctx.scheduledAt.getTime());
  }
}

/**
 * The database goes away while jobs run: the app connects as a role of its own, whose logins
 * the test revokes (and whose sessions it ends) and then restores.
 */
describe('execution records when the database goes away', () => {
  const role = `dsched_app_${randomBytes(3).toString('hex')}`;
  let db: TestDatabase;
  let admin: DataSource;
  let app: INestApplicationContext;
  const logger = new CapturingLogger();

  beforeAll(async () => {
    db = await TestDatabase.create('postgres');
    admin = new DataSource({ ...db.options } as DataSourceOptions);
    await admin.initialize();
    await admin.query(`CREATE ROLE ${role} LOGIN`);
    await admin.query(`ALTER DATABASE ${db.options.database} OWNER TO ${role}`);
    const moduleRef = await Test.createTestingModule({
      imports: [
        TypeOrmModule.forRoot({ ...db.options, username: role, autoLoadEntities: true, synchronize: true, extra: { connectionTimeoutMillis: 1_000 } } as TypeOrmModuleOptions),
        SchedulerModule.forRoot({ records: { sweepEvery: false } }),
      ],
      providers: [Heartbeat],
    })
      .setLogger(logger)
      .compile();
    moduleRef.useLogger(logger);
    moduleRef.get(VendorHookRegistry).onExecutionStatusChange('heartbeat', (execution) => recordedEnds.push(execution.dueAt!.getTime()));
    await moduleRef.init();
    app = moduleRef;
  });

  afterAll(async () => {
    await app?.close();
    await admin?.query(`ALTER ROLE ${role} LOGIN`).catch(() => undefined);
    await admin?.destroy();
    await db?.drop();
    await new DataSource({ ...db.options, database: 'postgres' } as DataSourceOptions)
      .initialize()
      .then(async (source) => {
        await source.query(`DROP ROLE IF EXISTS ${role}`);
        await source.destroy();
      });
  });

  it('keeps scheduling, logs the outage once, and writes every run once the database is back', async () => {
    await fires.until('runs before the outage', (events) => events.length >= 3);
    await admin.query(`ALTER ROLE ${role} NOLOGIN`);
    await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, [role]);
    await logger.until('error', /database is unreachable/);
    const firesAtOutage = fires.events.length;
    await fires.until('runs during the outage', (events) => events.length >= firesAtOutage + 8);
    await admin.query(`ALTER ROLE ${role} LOGIN`);
    await logger.until('log', /database is reachable again/);

    const scheduler = app.get(JobScheduler);
    await scheduler.pause('heartbeat');
    const executions = app.get(ExecutionManager);
    const ran = [...fires.events];
    await recordedEnds.until('every run recorded as ended', (ends) => ran.every((due) => ends.includes(due)));
    const recorded = await executions.list({ jobName: 'heartbeat', pageSize: 1_000 });
    const dues = recorded.map((execution) => execution.dueAt!.getTime());
    expect(new Set(dues).size).toBe(dues.length);
    expect([...dues].sort()).toEqual(expect.arrayContaining(ran));
    expect(recorded.filter((execution) => ran.includes(execution.dueAt!.getTime())).every((execution) => execution.status === 'Success')).toBe(true);
    expect(logger.count('error', /database is unreachable/)).toBe(1);
    expect(executions.recordingStatus()).toMatchObject({ databaseReachable: true, waitingWrites: 0, duplicatesCaught: 0 });
  });
});

const slowFires = new EventLog<number>();
const slowEnds = new EventLog<number>();

@Injectable()
class Ticker {
  @DistributedJob({ name: 'ticker', every: 200 })
  tick(ctx: JobContext) {
    slowFires.push(ctx.scheduledAt.getTime());
  }
}

/** The database hangs instead of failing: a lock the test holds makes every insert wait. */
describe('execution records when the database hangs', () => {
  let db: TestDatabase;
  let admin: DataSource;
  let app: INestApplicationContext;
  const logger = new CapturingLogger();

  beforeAll(async () => {
    db = await TestDatabase.create('postgres');
    const moduleRef = await Test.createTestingModule({
      imports: [
        TypeOrmModule.forRoot({ ...db.options, autoLoadEntities: true, synchronize: true }),
        SchedulerModule.forRoot({ lockTtl: 1_500, records: { sweepEvery: false } }),
      ],
      providers: [Ticker],
    })
      .setLogger(logger)
      .compile();
    moduleRef.useLogger(logger);
    moduleRef.get(VendorHookRegistry).onExecutionStatusChange('ticker', (execution) => slowEnds.push(execution.dueAt!.getTime()));
    await moduleRef.init();
    app = moduleRef;
    admin = new DataSource({ ...db.options } as DataSourceOptions);
    await admin.initialize();
  });

  afterAll(async () => {
    await app?.close();
    await admin?.destroy();
    await db?.drop();
  });

  it('runs the fires without waiting for their records, and ends the records once they are written', async () => {
    await slowEnds.until('a recorded run', (ends) => ends.length >= 1);
    const locker = admin.createQueryRunner();
    await locker.startTransaction();
    await locker.query('LOCK TABLE dsched_execution IN ACCESS EXCLUSIVE MODE');
    const firesAtLock = slowFires.events.length;
    await logger.until('error', /records did not answer in time; it runs unrecorded/);
    // Fires go on while the inserts wait behind the lock.
    await slowFires.until('runs while the database hangs', (fires) => fires.length >= firesAtLock + 3);
    await locker.commitTransaction();
    await locker.release();

    await app.get(JobScheduler).pause('ticker');
    const ran = [...slowFires.events];
    await slowEnds.until('every run recorded as ended', (ends) => ran.every((due) => ends.includes(due)));
    const recorded = await app.get(ExecutionManager).list({ jobName: 'ticker', pageSize: 1_000 });
    const dues = recorded.map((execution) => execution.dueAt!.getTime());
    expect(new Set(dues).size).toBe(dues.length);
    expect(dues).toEqual(expect.arrayContaining(ran));
    expect(recorded.filter((execution) => ran.includes(execution.dueAt!.getTime())).every((execution) => execution.status === 'Success')).toBe(true);
  });
});
