import type { EntitySchema, EntitySchemaColumnOptions, ValueTransformer } from 'typeorm';
import { EXECUTION_TABLE, TASK_LOG_TABLE, TASK_TABLE } from './execution.constants';
import { Execution } from './execution.entity';
import type { RecordsDatabase } from './execution.constants';
import { TaskLog } from './task-log.entity';
import { Task } from './task.entity';
import { SnapshotRecord } from '../snapshot/snapshot.entity';
import { SNAPSHOT_TABLE } from '../snapshot/snapshot.constants';

/** Drivers hand BIGINT back as strings; ids and tokens stay far below 2^53. */
const bigintAsNumber: ValueTransformer = {
  to: (value: unknown) => value,
  from: (value: unknown) => (value === null || value === undefined ? value : Number(value)),
};

/**
 * The column types that differ between the databases: each is exactly what that database's
 * migration (`schedulerMigrations(database)`) creates, so `synchronize` and `migration:generate`
 * find nothing to change after it. No single TypeORM type can say them all: SQLite allows
 * AUTOINCREMENT only on `INTEGER PRIMARY KEY` while the others have BIGINT ids, `timestamptz`
 * exists only on PostgreSQL, `mediumtext` only on MySQL.
 */
interface DatabaseTypes {
  id: EntitySchemaColumnOptions['type'];
  time: EntitySchemaColumnOptions['type'];
  log: EntitySchemaColumnOptions['type'];
  /** A snapshot's content: 10,000 jobs are megabytes, past MySQL's MEDIUMTEXT for big clusters. */
  snapshot: EntitySchemaColumnOptions['type'];
  /** A task's last checkpoint: up to 512 KB of JSON, past MySQL's TEXT (64 KB). */
  checkpoint: EntitySchemaColumnOptions['type'];
}

const TYPES: Record<RecordsDatabase, DatabaseTypes> = {
  // TypeORM 0.3 converts Dates only for the long name, not for `timestamptz`.
  postgres: { id: 'bigint', time: 'timestamp with time zone', log: 'text', snapshot: 'text', checkpoint: 'text' },
  mysql: { id: 'bigint', time: 'datetime', log: 'mediumtext', snapshot: 'longtext', checkpoint: 'mediumtext' },
  // INTEGER PRIMARY KEY is SQLite's 64-bit rowid; times are text in `datetime(3)` columns.
  sqlite: { id: 'int', time: 'datetime', log: 'text', snapshot: 'text', checkpoint: 'text' },
};

/**
 * The mapping before the database could be named, and still the one without a name: what
 * `synchronize` made from it is what databases of earlier versions have (on SQLite it is the
 * migration's schema; elsewhere INT ids, and `timestamp` without time zone on PostgreSQL).
 */
const UNNAMED: DatabaseTypes = { id: 'int', time: Date, log: 'text', snapshot: 'text', checkpoint: 'text' };

/**
 * JSON in a text column of the database's size (`simple-json` is TEXT only). Null stays SQL NULL;
 * the records write the state's JSON as it came (see `RecordsRunRecorder`), not through this.
 */
const jsonText: ValueTransformer = {
  to: (value: unknown) => (value === null || value === undefined ? value : JSON.stringify(value)),
  from: (value: unknown) => (value === null || value === undefined ? null : (JSON.parse(value as string) as unknown)),
};

// One set per database for the process: the same objects wherever they are listed, so that
// `forFeature` and an app's own `entities` never hand TypeORM two schemas of one entity.
const cache = new Map<RecordsDatabase | undefined, EntitySchema[]>();

/**
 * The TypeORM entities of the execution records, for the database that holds them: with the
 * same `database` as `schedulerMigrations(database)`, they describe exactly the tables the
 * migrations create (`'mysql'` covers MySQL and MariaDB; `'sqlite'` any SQLite driver).
 * `SchedulerModule` registers them with `TypeOrmModule.forFeature` (for `records.database`), so
 * `autoLoadEntities: true` picks them up; otherwise list them in the DataSource:
 * `entities: [...schedulerEntities('postgres'), ...yours]`.
 *
 * Without a database: the mapping of earlier versions, which matches the migrations on SQLite
 * only. Keep it for tables an earlier version's `synchronize` created (see the README).
 *
 * Built on first call so that the library loads without TypeORM installed.
 */
export function schedulerEntities(database?: RecordsDatabase): EntitySchema[] {
  let schemas = cache.get(database);
  if (!schemas) {
    if (database !== undefined && !Object.hasOwn(TYPES, database)) {
      throw new Error(`Execution-record entities exist for 'postgres', 'mysql' and 'sqlite', not '${String(database)}'.`);
    }
    schemas = buildSchemas(database === undefined ? UNNAMED : TYPES[database]);
    cache.set(database, schemas);
  }
  return schemas;
}

function buildSchemas(types: DatabaseTypes): EntitySchema[] {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { EntitySchema } = require('typeorm') as typeof import('typeorm');
  const id: EntitySchemaColumnOptions = { type: types.id, primary: true, generated: 'increment', transformer: bigintAsNumber };
  const time = (name: string, nullable = false): EntitySchemaColumnOptions => ({ name, type: types.time, precision: 3, nullable });
  const text = (name: string, nullable = true): EntitySchemaColumnOptions => ({ name, type: 'text', nullable });
  const json = (name: string, nullable = false): EntitySchemaColumnOptions => ({ name, type: 'simple-json', nullable });
  const varchar = (name: string, length: number, nullable = false): EntitySchemaColumnOptions => ({ name, type: 'varchar', length, nullable });
  const bigint = (name: string, nullable: boolean): EntitySchemaColumnOptions => ({ name, type: 'bigint', nullable, transformer: bigintAsNumber });
  return [
    new EntitySchema<Execution>({
      name: 'Execution',
      target: Execution,
      tableName: EXECUTION_TABLE,
      columns: {
        id,
        vendorType: varchar('vendor_type', 64),
        vendorId: varchar('vendor_id', 64, true),
        status: varchar('status', 16),
        statusMessage: text('status_message'),
        metrics: json('metrics', true),
        trigger: varchar('trigger', 16),
        extraAttrs: json('extra_attrs'),
        startTime: time('start_time'),
        updateTime: time('update_time'),
        endTime: time('end_time', true),
        jobName: varchar('job_name', 200, true),
        scheduledAt: time('scheduled_at', true),
        dueAt: time('due_at', true),
        fencingToken: bigint('fencing_token', true),
      },
      indices: [
        { name: 'IDX_dsched_execution_vendor', columns: ['vendorType', 'vendorId'] },
        { name: 'IDX_dsched_execution_status', columns: ['status', 'updateTime'] },
        { name: 'IDX_dsched_execution_start', columns: ['startTime'] },
        // The backstop against a due time recorded twice (NULL for other triggers never collides).
        { name: 'UQ_dsched_execution_due', columns: ['jobName', 'dueAt'], unique: true },
      ],
    }),
    new EntitySchema<Task>({
      name: 'Task',
      target: Task,
      tableName: TASK_TABLE,
      columns: {
        id,
        vendorType: varchar('vendor_type', 64),
        executionId: bigint('execution_id', false),
        jobName: varchar('job_name', 200),
        parameters: json('parameters'),
        status: varchar('status', 16),
        statusMessage: text('status_message'),
        runCount: { name: 'run_count', type: 'int', default: 0 },
        jobId: varchar('job_id', 64),
        extraAttrs: json('extra_attrs'),
        creationTime: time('creation_time'),
        startTime: time('start_time', true),
        updateTime: time('update_time'),
        endTime: time('end_time', true),
        statusRevision: { ...bigint('status_revision', false), default: 0 },
        fencingToken: { ...bigint('fencing_token', false), default: 0 },
        // The third migration: the last checkpoint a run of the task wrote, and when.
        checkpointState: { name: 'checkpoint_state', type: types.checkpoint, nullable: true, transformer: jsonText },
        checkpointSavedAt: time('checkpoint_saved_at', true),
      },
      indices: [
        { name: 'IDX_dsched_task_execution', columns: ['executionId', 'status'] },
        { name: 'IDX_dsched_task_vendor', columns: ['vendorType', 'status'] },
        { name: 'UQ_dsched_task_job', columns: ['jobId'], unique: true },
      ],
    }),
    new EntitySchema<TaskLog>({
      name: 'TaskLog',
      target: TaskLog,
      tableName: TASK_LOG_TABLE,
      columns: {
        taskId: { name: 'task_id', type: 'bigint', primary: true, transformer: bigintAsNumber },
        content: { name: 'content', type: types.log, nullable: false },
        droppedLines: { name: 'dropped_lines', type: 'int', default: 0 },
        updateTime: time('update_time'),
      },
    }),
    // The snapshots' table (the second migration of each database): written by SnapshotPersister.
    new EntitySchema<SnapshotRecord>({
      name: 'SnapshotRecord',
      target: SnapshotRecord,
      tableName: SNAPSHOT_TABLE,
      columns: {
        id,
        prefix: varchar('prefix', 200),
        format: { name: 'format', type: 'int' },
        writtenAt: time('written_at'),
        writtenBy: varchar('written_by', 200),
        jobCount: { name: 'job_count', type: 'int' },
        content: { name: 'content', type: types.snapshot, nullable: false },
      },
      indices: [{ name: 'IDX_dsched_snapshot_prefix', columns: ['prefix', 'id'] }],
    }),
  ];
}
