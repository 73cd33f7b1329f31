import 'reflect-metadata';
import { DataSource, DataSourceOptions, Table } from 'typeorm';
import { Execution, Task, TaskLog, schedulerEntities, schedulerMigrations } from '../lib/records';
import { EXECUTION_TABLE, TASK_LOG_TABLE, TASK_TABLE } from '../lib/execution/execution.constants';
import { RecordsDialect } from '../lib/execution/records.dialect';
import { DATABASE_KINDS, TestDatabase, TestDatabaseKind } from './support/databases';

/**
 * The shipped migrations against what TypeORM derives from the entities: on an empty database
 * they must give the schema `synchronize` would, except for the deliberately wider types below,
 * and the records must work on it.
 */
type Deliberate = Record<string, Record<string, string>>;

/** Per database: table -> column -> the type the migration gives it, where the entities say less. */
const DELIBERATE: Record<TestDatabaseKind, Deliberate> = {
  postgres: {
    [EXECUTION_TABLE]: {
      id: 'bigint',
      start_time: 'timestamp with time zone',
      update_time: 'timestamp with time zone',
      end_time: 'timestamp with time zone',
      scheduled_at: 'timestamp with time zone',
      due_at: 'timestamp with time zone',
    },
    [TASK_TABLE]: {
      id: 'bigint',
      creation_time: 'timestamp with time zone',
      start_time: 'timestamp with time zone',
      update_time: 'timestamp with time zone',
      end_time: 'timestamp with time zone',
    },
    [TASK_LOG_TABLE]: { update_time: 'timestamp with time zone' },
  },
  mariadb: {
    [EXECUTION_TABLE]: { id: 'bigint' },
    [TASK_TABLE]: { id: 'bigint' },
    [TASK_LOG_TABLE]: { content: 'mediumtext' },
  },
  sqlite: { [EXECUTION_TABLE]: {}, [TASK_TABLE]: {}, [TASK_LOG_TABLE]: {} },
};

const TABLES = [EXECUTION_TABLE, TASK_TABLE, TASK_LOG_TABLE];

describe.each(DATABASE_KINDS)('records migrations on %s', (kind) => {
  let database: TestDatabase;
  let dataSource: DataSource;

  beforeAll(async () => {
    database = await TestDatabase.create(kind);
    dataSource = new DataSource({
      ...database.options,
      entities: schedulerEntities(),
      migrations: schedulerMigrations(kind === 'mariadb' ? 'mysql' : kind),
    } as DataSourceOptions);
    await dataSource.initialize();
  });

  afterAll(async () => {
    if (dataSource?.isInitialized) await dataSource.destroy();
    await database?.drop();
  });

  async function table(name: string): Promise<Table | undefined> {
    const queryRunner = dataSource.createQueryRunner();
    try {
      return await queryRunner.getTable(name);
    } finally {
      await queryRunner.release();
    }
  }

  it('creates the tables on an empty database', async () => {
    for (const name of TABLES) expect(await table(name)).toBeUndefined();
    const ran = await dataSource.runMigrations();
    expect(ran.map((migration) => migration.name)).toEqual(['DschedRecords1795400000000']);
    expect(await dataSource.showMigrations()).toBe(false);
  });

  it('gives the schema the entities describe, apart from the deliberate types', async () => {
    const deliberate = DELIBERATE[kind];
    for (const metadata of dataSource.entityMetadatas) {
      const actual = (await table(metadata.tableName))!;
      expect(actual).toBeDefined();

      // The same columns, and no differences TypeORM sees but those intended.
      expect(actual.columns.map((c) => c.name).sort()).toEqual(metadata.columns.map((c) => c.databaseName).sort());
      const changed = dataSource.driver.findChangedColumns(actual.columns, metadata.columns).map((c) => c.databaseName);
      expect(changed.sort()).toEqual(Object.keys(deliberate[metadata.tableName]).sort());

      // Where the type differs on purpose, all else still matches.
      for (const [name, type] of Object.entries(deliberate[metadata.tableName])) {
        const column = actual.findColumnByName(name)!;
        const expected = metadata.findColumnWithDatabaseName(name)!;
        expect({ name, type: column.type, nullable: column.isNullable, primary: column.isPrimary, generated: column.isGenerated }).toEqual({
          name,
          type,
          nullable: expected.isNullable,
          primary: expected.isPrimary,
          generated: expected.isGenerated,
        });
        if (type === 'timestamp with time zone') expect(column.precision).toBe(3);
      }

      // The same indexes, by name, columns and uniqueness.
      const shape = (name: string | undefined, columns: string[], unique: boolean) => ({ name, columns, unique });
      expect(actual.indices.map((i) => shape(i.name, i.columnNames, !!i.isUnique)).sort((a, b) => a.name!.localeCompare(b.name!))).toEqual(
        metadata.indices
          .map((i) => shape(i.name, i.columns.map((c) => c.databaseName), i.isUnique))
          .sort((a, b) => a.name!.localeCompare(b.name!)),
      );
    }
    expect(dataSource.entityMetadatas.map((m) => m.tableName).sort()).toEqual([...TABLES].sort());

    if (kind === 'sqlite') {
      // No deliberate differences here: exactly what `synchronize` would make.
      const pending = await dataSource.driver.createSchemaBuilder().log();
      expect(pending.upQueries.map((q) => q.query)).toEqual([]);
    }
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
    expect(task).toEqual({ id: taskId, ...taskRow, runCount: 0, statusRevision: 0, fencingToken: 0 });
    expect(typeof task.id).toBe('number');

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

  it('drops the tables when the migration is undone', async () => {
    await dataSource.undoLastMigration();
    for (const name of TABLES) expect(await table(name)).toBeUndefined();
    expect(await dataSource.showMigrations()).toBe(true);
  });
});
