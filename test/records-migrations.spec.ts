import 'reflect-metadata';
import { Test } from '@nestjs/testing';
import { getDataSourceToken, TypeOrmModule } from '@nestjs/typeorm';
import type { DataSource, DataSourceOptions, Table } from 'typeorm';
import { DataSource as DataSource1, EntitySchema, EntitySchemaOptions } from 'typeorm';
import { InvalidSchedulerOptionError, RecordsDatabase, SchedulerModule, SnapshotPersister } from '../lib';
import { Execution, ExecutionManager, SnapshotRecord, Task, TaskLog, schedulerEntities, schedulerMigrations } from '../lib/records';
import { SNAPSHOT_TABLE } from '../lib/snapshot/snapshot.constants';
import { EXECUTION_TABLE, TASK_LOG_TABLE, TASK_TABLE } from '../lib/execution/execution.constants';
import { RecordsDialect } from '../lib/execution/records.dialect';
import { DATABASE_KINDS, TestDatabase, TestDatabaseKind } from './support/databases';

/**
 * The shipped migrations against the entities of the same database: after the migrations, TypeORM
 * must find nothing to change (what `synchronize` and `migration:generate` would do), on both
 * TypeORM majors the peer range admits, and the records must work on the tables.
 *
 * TypeORM 0.3 is the `typeorm-0.3` alias. The entities are built by the `typeorm` (1.x) copy: a 0.3
 * DataSource accepts them, since both copies recognise an EntitySchema by `Symbol.for('EntitySchema')`,
 * a symbol shared across copies; the migrations only use the QueryRunner they are handed.
 */
type DataSourceClass = new (options: DataSourceOptions) => DataSource;
const MAJORS: [string, () => DataSourceClass][] = [
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  ['1.x', () => (require('typeorm') as typeof import('typeorm')).DataSource],
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  ['0.3', () => (require('typeorm-0.3') as typeof import('typeorm')).DataSource],
];

const TABLES = [EXECUTION_TABLE, TASK_TABLE, TASK_LOG_TABLE, SNAPSHOT_TABLE];
const MIGRATION_NAME = 'DschedRecords1795400000000';
/** The second migration: the snapshots' table. */
const SNAPSHOT_MIGRATION_NAME = 'DschedSnapshots1795500000000';
/** The third: the task's last checkpoint, two columns on the task table. */
const TASK_CHECKPOINT_MIGRATION_NAME = 'DschedTaskCheckpoint1795600000000';
const CHECKPOINT_COLUMNS = ['checkpoint_state', 'checkpoint_saved_at'];

/** The column names TypeORM reads back of one table. */
async function columnsOf(dataSource: DataSource, table: string): Promise<string[]> {
  const shape = (await tableShapes(dataSource)).find((t) => (t as Table).name === table) as { columns: { name: string }[] } | undefined;
  return shape?.columns.map((c) => c.name) ?? [];
}

const databaseOf = (kind: TestDatabaseKind): RecordsDatabase => (kind === 'mariadb' ? 'mysql' : kind);

/** What TypeORM reads back of a table: enough to see any change `synchronize` could make. */
async function tableShapes(dataSource: DataSource): Promise<unknown[]> {
  const queryRunner = dataSource.createQueryRunner();
  try {
    const tables = (await queryRunner.getTables(TABLES)) as Table[];
    return tables
      .map((table) => ({
        name: table.name,
        columns: table.columns.map((c) => ({
          name: c.name,
          type: c.type,
          length: c.length,
          precision: c.precision,
          nullable: c.isNullable,
          default: c.default,
          primary: c.isPrimary,
          generated: c.isGenerated,
        })),
        indices: table.indices.map((i) => ({ name: i.name, columns: i.columnNames, unique: !!i.isUnique })).sort((a, b) => a.name!.localeCompare(b.name!)),
      }))
      .sort((a, b) => a.name.localeCompare(b.name));
  } finally {
    await queryRunner.release();
  }
}

async function pendingQueries(dataSource: DataSource): Promise<string[]> {
  const pending = await dataSource.driver.createSchemaBuilder().log();
  return pending.upQueries.map((query) => query.query);
}

describe.each(MAJORS.flatMap(([major, load]) => DATABASE_KINDS.map((kind) => [kind, major, load] as const)))(
  'records migrations on %s with TypeORM %s',
  (kind, _major, loadDataSource) => {
    let database: TestDatabase;
    let dataSource: DataSource;

    beforeAll(async () => {
      database = await TestDatabase.create(kind);
      const DataSourceOfMajor = loadDataSource();
      dataSource = new DataSourceOfMajor({
        ...database.options,
        entities: schedulerEntities(databaseOf(kind)),
        migrations: schedulerMigrations(databaseOf(kind)),
      } as DataSourceOptions);
      await dataSource.initialize();
    });

    afterAll(async () => {
      if (dataSource?.isInitialized) await dataSource.destroy();
      await database?.drop();
    });

    it('creates the tables on an empty database', async () => {
      expect(await tableShapes(dataSource)).toEqual([]);
      const ran = await dataSource.runMigrations();
      expect(ran.map((migration) => migration.name)).toEqual([MIGRATION_NAME, SNAPSHOT_MIGRATION_NAME, TASK_CHECKPOINT_MIGRATION_NAME]);
      expect(await dataSource.showMigrations()).toBe(false);
      expect((await tableShapes(dataSource)).map((table) => (table as Table).name)).toEqual([...TABLES].sort());
    });

    it('leaves TypeORM nothing to change: the entities describe exactly what the migrations made', async () => {
      // On failure the difference lists the statements `migration:generate` would write.
      expect(await pendingQueries(dataSource)).toEqual([]);
    });

    it('survives synchronize: the tables and their rows stay as they are', async () => {
      const before = await tableShapes(dataSource);
      const executions = dataSource.getRepository(Execution);
      const startTime = new Date(Date.UTC(2031, 1, 2, 3, 4, 5, 678));
      const { id } = await executions.save(
        executions.create({ vendorType: 'sync', status: 'Success', trigger: 'MANUAL', extraAttrs: {}, startTime, updateTime: startTime, fencingToken: 2 ** 40 }),
      );

      await dataSource.synchronize();

      expect(await tableShapes(dataSource)).toEqual(before);
      expect(await executions.findOneByOrFail({ id })).toMatchObject({ id, vendorType: 'sync', startTime, fencingToken: 2 ** 40 });
      await executions.delete({ id });
    });

    it('stores and reads back executions, tasks and logs', async () => {
      const at = (ms: number) => new Date(Date.UTC(2030, 0, 2, 3, 4, 5, ms));
      const executions = dataSource.getRepository(Execution);
      const row = {
        vendorType: 'report',
        vendorId: 'policy-7',
        status: 'Running',
        statusMessage: null,
        metrics: { taskCount: 1, pendingTaskCount: 0, runningTaskCount: 1, successTaskCount: 0, errorTaskCount: 0, stoppedTaskCount: 0 },
        trigger: 'SCHEDULE',
        extraAttrs: { region: 'eu', nested: { n: 1 } },
        startTime: at(123),
        updateTime: at(456),
        endTime: null,
        jobName: 'report',
        scheduledAt: at(789),
        dueAt: at(789),
        fencingToken: 2 ** 40,
      } satisfies Partial<Execution>;
      const saved = await executions.save(executions.create(row));
      expect(typeof saved.id).toBe('number');

      const execution = await executions.findOneByOrFail({ id: saved.id });
      expect(execution).toEqual({ id: saved.id, ...row });
      expect(execution.startTime).toBeInstanceOf(Date);

      const tasks = dataSource.getRepository(Task);
      const parameters: Task['parameters'] = { page: 3 };
      // Leaves out the columns with defaults: the database fills them in.
      const taskRow = {
        vendorType: 'report',
        executionId: execution.id,
        jobName: 'report',
        parameters,
        status: 'Pending',
        statusMessage: null,
        jobId: 'job-1',
        extraAttrs: {},
        creationTime: at(1),
        startTime: null,
        updateTime: at(999),
        endTime: null,
      } satisfies Partial<Task>;
      const insert = await tasks.insert({ ...taskRow }); // a copy: insert() writes the generated id into what it is given
      // The insert result is not transformed: BIGINT ids come back as strings there (the managers use Number()).
      const taskId = Number(insert.identifiers[0].id);
      const task = await tasks.findOneByOrFail({ executionId: execution.id });
      expect(task).toEqual({ id: taskId, ...taskRow, runCount: 0, statusRevision: 0, fencingToken: 0, checkpointState: null, checkpointSavedAt: null });
      expect(typeof task.id).toBe('number');

      // A checkpoint up to 512 KB of JSON: past MySQL's TEXT, hence MEDIUMTEXT there.
      const checkpointState = { cursor: 'c'.repeat(500_000), done: [1, 2], nested: { ok: true } };
      await tasks.save({ ...task, checkpointState, checkpointSavedAt: at(321) });
      expect(await tasks.findOneByOrFail({ id: taskId })).toMatchObject({ checkpointState, checkpointSavedAt: at(321) });

      const logs = dataSource.getRepository(TaskLog);
      await logs.insert({ taskId: task.id, content: 'line 1\nline 2\n', updateTime: at(5) });
      expect(await logs.findOneByOrFail({ taskId: task.id })).toEqual({ taskId: task.id, content: 'line 1\nline 2\n', droppedLines: 0, updateTime: at(5) });
    });

    it('rejects a second execution of a job for the same due time', async () => {
      const executions = dataSource.getRepository(Execution);
      const row = (dueAt: Date | null, trigger: Execution['trigger']): Partial<Execution> => ({
        vendorType: 'cleanup',
        status: 'Pending',
        trigger,
        extraAttrs: {},
        startTime: new Date(),
        updateTime: new Date(),
        jobName: 'cleanup',
        dueAt,
      });
      const due = new Date(Date.UTC(2030, 5, 1, 0, 0, 0, 250));
      await executions.insert(row(due, 'SCHEDULE'));

      const duplicate = await executions.insert(row(new Date(due.getTime()), 'SCHEDULE')).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(duplicate).toBeDefined();
      expect(new RecordsDialect(dataSource).isUniqueViolation(duplicate)).toBe(true);

      // One millisecond apart is another due time; runs without one never collide.
      await executions.insert(row(new Date(due.getTime() + 1), 'SCHEDULE'));
      await executions.insert(row(null, 'MANUAL'));
      await executions.insert(row(null, 'MANUAL'));
      expect(await executions.countBy({ jobName: 'cleanup' })).toBe(4);
    });

    it('stores and reads back snapshots', async () => {
      const rows = dataSource.getRepository(SnapshotRecord);
      const row = { prefix: 'dsched', format: 1, writtenAt: new Date(Date.UTC(2030, 0, 2, 3, 4, 5, 678)), writtenBy: 'replica-1', jobCount: 2, content: 'x'.repeat(70_000) };
      const { id } = await rows.save(rows.create(row));
      expect(await rows.findOneByOrFail({ id })).toEqual({ id, ...row });
      await rows.delete({ id });
    });

    it('drops the tables when the migrations are undone, and makes them again', async () => {
      expect(await columnsOf(dataSource, TASK_TABLE)).toEqual(expect.arrayContaining(CHECKPOINT_COLUMNS));
      await dataSource.undoLastMigration();
      expect((await columnsOf(dataSource, TASK_TABLE)).filter((column) => column.startsWith('checkpoint_'))).toEqual([]);
      expect((await tableShapes(dataSource)).map((table) => (table as Table).name)).toEqual([...TABLES].sort());
      await dataSource.undoLastMigration();
      expect((await tableShapes(dataSource)).map((table) => (table as Table).name)).toEqual([EXECUTION_TABLE, TASK_TABLE, TASK_LOG_TABLE].sort());
      await dataSource.undoLastMigration();
      expect(await tableShapes(dataSource)).toEqual([]);
      expect(await dataSource.showMigrations()).toBe(true);

      await dataSource.runMigrations();
      expect(await pendingQueries(dataSource)).toEqual([]);
    });
  },
);

describe.each(DATABASE_KINDS)('SchedulerModule with records.database on %s', (kind) => {
  let database: TestDatabase;
  // A DataSource name per database: @nestjs/typeorm keeps the entities of forFeature per name for
  // the whole process, and each test here registers another database's.
  const name = `records_${kind}`;

  beforeAll(async () => {
    database = await TestDatabase.create(kind);
  });

  afterAll(async () => {
    await database?.drop();
  });

  it('registers the entities of that database: after the migrations, nothing to change, and runs are recorded', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        TypeOrmModule.forRoot({ ...database.options, name, autoLoadEntities: true, migrations: schedulerMigrations(databaseOf(kind)), migrationsRun: true }),
        SchedulerModule.forRoot({ records: { dataSource: name, database: databaseOf(kind), sweepEvery: false } }),
      ],
    }).compile();
    await moduleRef.init();
    try {
      const dataSource = moduleRef.get<DataSource>(getDataSourceToken(name));
      expect(await dataSource.showMigrations()).toBe(false);
      expect(await pendingQueries(dataSource)).toEqual([]);

      const executions = moduleRef.get(ExecutionManager);
      const executionId = await executions.create('import', 'batch-1', 'MANUAL', { source: 's3' });
      expect(await executions.get(executionId)).toMatchObject({ id: executionId, vendorType: 'import', vendorId: 'batch-1', status: 'Running', extraAttrs: { source: 's3' } });

      // Snapshots go to the records' database by default, the newest `keep` (5) kept.
      const persister = moduleRef.get(SnapshotPersister);
      expect(persister.status()).toMatchObject({ enabled: true, store: `table "${SNAPSHOT_TABLE}" of DataSource "${name}"` });
      for (let i = 0; i < 7; i++) expect(await persister.save()).toBe(true);
      const rows = dataSource.getRepository(SnapshotRecord);
      expect(await rows.count()).toBe(5);
      expect(await rows.findOne({ where: {}, order: { id: 'DESC' } })).toMatchObject({ prefix: 'dsched', format: 1, jobCount: 1 });

      // The table unreachable (here: renamed away): counted, the app goes on, retried until it is back.
      await dataSource.query(`ALTER TABLE ${SNAPSHOT_TABLE} RENAME TO ${SNAPSHOT_TABLE}_away`);
      expect(await persister.save()).toBe(false);
      expect(persister.status()).toMatchObject({ saves: 7, saveFailures: 1, lastSaveError: expect.any(String) });
      await dataSource.query(`ALTER TABLE ${SNAPSHOT_TABLE}_away RENAME TO ${SNAPSHOT_TABLE}`);
      const deadline = Date.now() + 10_000;
      while (persister.status().saves < 8 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(persister.status()).toMatchObject({ saves: 8, lastSaveError: null });
    } finally {
      await moduleRef.close();
    }
  });

  if (kind === 'mariadb') {
    it('fails the start, naming the option, when the DataSource is another database', async () => {
      // SQLite's types exist on MariaDB too, so TypeORM itself accepts this mix; the module does not.
      let dataSource: DataSource | undefined;
      const start = Test.createTestingModule({
        imports: [
          TypeOrmModule.forRootAsync({
            name: 'records_mismatch',
            useFactory: () => ({ ...database.options, name: 'records_mismatch', autoLoadEntities: true }),
            // Kept to close it: a start that fails leaves the DataSource open.
            dataSourceFactory: async (options) => (dataSource = new DataSource1(options!)),
          }),
          SchedulerModule.forRoot({ records: { dataSource: 'records_mismatch', database: 'sqlite', sweepEvery: false } }),
        ],
      }).compile();
      try {
        await expect(start).rejects.toThrow(InvalidSchedulerOptionError);
        await expect(start).rejects.toThrow(`option "records.database" has an invalid value 'sqlite': the DataSource is "mariadb", which is 'mysql'`);
      } finally {
        if (dataSource?.isInitialized) await dataSource.destroy();
      }
    });
  }
});

/**
 * What the README tells users whose tables an earlier version's `synchronize` made (the entities
 * without a database) to run before they name the database: same text, tested here.
 */
const CONVERT_SYNCHRONIZED: Record<RecordsDatabase, string[]> = {
  postgres: [
    `ALTER TABLE "dsched_execution" ALTER COLUMN "id" TYPE bigint, ${['start_time', 'update_time', 'end_time', 'scheduled_at', 'due_at'].map(toTimestamptz).join(', ')}`,
    `ALTER SEQUENCE "dsched_execution_id_seq" AS bigint`,
    `ALTER TABLE "dsched_task" ALTER COLUMN "id" TYPE bigint, ${['creation_time', 'start_time', 'update_time', 'end_time'].map(toTimestamptz).join(', ')}`,
    `ALTER SEQUENCE "dsched_task_id_seq" AS bigint`,
    `ALTER TABLE "dsched_task_log" ${toTimestamptz('update_time')}`,
  ],
  mysql: [
    'ALTER TABLE `dsched_execution` MODIFY `id` bigint NOT NULL AUTO_INCREMENT',
    'ALTER TABLE `dsched_task` MODIFY `id` bigint NOT NULL AUTO_INCREMENT',
    'ALTER TABLE `dsched_task_log` MODIFY `content` mediumtext NOT NULL',
  ],
  sqlite: [],
};

/** The stored wall-clock times were the app's local time: UTC on this machine, as on most servers. */
function toTimestamptz(column: string): string {
  return `ALTER COLUMN "${column}" TYPE timestamptz(3) USING "${column}" AT TIME ZONE 'UTC'`;
}

describe.each(DATABASE_KINDS)("tables an earlier version's synchronize made, on %s", (kind) => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await TestDatabase.create(kind);
  });

  afterAll(async () => {
    await database?.drop();
  });

  it('keep their rows and match the entities of the database once converted and the migration is marked as run', async () => {
    const at = new Date(Date.UTC(2029, 11, 31, 23, 59, 58, 765));
    // The earlier version's entities: the records' tables, no snapshots' table, no checkpoint on the task.
    const earlierEntities = schedulerEntities()
      .filter((schema) => schema.options.tableName !== SNAPSHOT_TABLE)
      .map((schema) => {
        if (schema.options.tableName !== TASK_TABLE) return schema;
        const { checkpointState: _state, checkpointSavedAt: _savedAt, ...columns } = schema.options.columns as Record<string, unknown>;
        return new EntitySchema({ ...schema.options, columns } as EntitySchemaOptions<unknown>);
      });
    const earlier = new DataSource1({ ...database.options, entities: earlierEntities, synchronize: true } as DataSourceOptions);
    await earlier.initialize();
    const { id: executionId } = await earlier.getRepository(Execution).save({ vendorType: 'old', status: 'Success', trigger: 'SCHEDULE', extraAttrs: {}, startTime: at, updateTime: at, dueAt: at });
    await earlier.getRepository(Task).insert({ vendorType: 'old', executionId, jobName: 'old', parameters: {}, status: 'Success', jobId: 'old-1', extraAttrs: {}, creationTime: at, updateTime: at });
    await earlier.destroy();

    const dataSource = new DataSource1({
      ...database.options,
      entities: schedulerEntities(databaseOf(kind)),
      migrations: schedulerMigrations(databaseOf(kind)),
    } as DataSourceOptions);
    await dataSource.initialize();
    try {
      for (const statement of CONVERT_SYNCHRONIZED[databaseOf(kind)]) await dataSource.query(statement);
      expect(await dataSource.showMigrations()).toBe(true);
      // The records' migration is recorded as run (as `typeorm migration:run --fake` does with only it
      // listed); the snapshots' and the task checkpoint's then run for real.
      const faker = new DataSource1({ ...database.options, migrations: schedulerMigrations(databaseOf(kind)).slice(0, 1) } as DataSourceOptions);
      await faker.initialize();
      await faker.runMigrations({ fake: true });
      await faker.destroy();
      expect((await dataSource.runMigrations()).map((migration) => migration.name)).toEqual([SNAPSHOT_MIGRATION_NAME, TASK_CHECKPOINT_MIGRATION_NAME]);
      expect(await dataSource.showMigrations()).toBe(false);

      expect(await pendingQueries(dataSource)).toEqual([]);
      expect(await dataSource.getRepository(Execution).findOneByOrFail({ id: executionId })).toMatchObject({ id: executionId, startTime: at, dueAt: at });
      expect(await dataSource.getRepository(Task).findOneByOrFail({ executionId })).toMatchObject({ jobId: 'old-1', creationTime: at, checkpointState: null, checkpointSavedAt: null });
      // The ids go on from where they were.
      const { id: next } = await dataSource.getRepository(Execution).save({ vendorType: 'new', status: 'Running', trigger: 'MANUAL', extraAttrs: {}, startTime: at, updateTime: at });
      expect(next).toBe(executionId + 1);
    } finally {
      await dataSource.destroy();
    }
  });
});
