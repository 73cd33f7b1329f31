import type { EntitySchema, EntitySchemaColumnOptions, ValueTransformer } from 'typeorm';
import { EXECUTION_TABLE, TASK_LOG_TABLE, TASK_TABLE } from './execution.constants';
import { Execution } from './execution.entity';
import { TaskLog } from './task-log.entity';
import { Task } from './task.entity';

/** Drivers hand BIGINT back as strings; ids and tokens stay far below 2^53. */
const bigintAsNumber: ValueTransformer = {
  to: (value: unknown) => value,
  from: (value: unknown) => (value === null || value === undefined ? value : Number(value)),
};

// `int` is what SQLite accepts for AUTOINCREMENT; the shipped migrations make ids BIGINT on
// PostgreSQL and MySQL, and the transformer reads either as a number.
const id: EntitySchemaColumnOptions = { type: 'int', primary: true, generated: 'increment', transformer: bigintAsNumber };
// `Date` lets each driver pick its type: timestamp on PostgreSQL, datetime on MySQL and SQLite.
const time = (name: string, nullable = false): EntitySchemaColumnOptions => ({ name, type: Date, precision: 3, nullable });
const text = (name: string, nullable = true): EntitySchemaColumnOptions => ({ name, type: 'text', nullable });
const json = (name: string, nullable = false): EntitySchemaColumnOptions => ({ name, type: 'simple-json', nullable });
const varchar = (name: string, length: number, nullable = false): EntitySchemaColumnOptions => ({ name, type: 'varchar', length, nullable });
const bigint = (name: string, nullable: boolean): EntitySchemaColumnOptions => ({ name, type: 'bigint', nullable, transformer: bigintAsNumber });

let schemas: EntitySchema[] | undefined;

/**
 * The TypeORM entities of the execution records. `SchedulerModule` registers them with
 * `TypeOrmModule.forFeature`, so `autoLoadEntities: true` picks them up; otherwise list them in
 * the DataSource: `entities: [...schedulerEntities(), ...yours]`.
 *
 * Built on first call so that the library loads without TypeORM installed.
 */
export function schedulerEntities(): EntitySchema[] {
  if (schemas) return schemas;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { EntitySchema } = require('typeorm') as typeof import('typeorm');
  schemas = [
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
        executionId: { ...bigint('execution_id', false) },
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
        content: text('content', false),
        droppedLines: { name: 'dropped_lines', type: 'int', default: 0 },
        updateTime: time('update_time'),
      },
    }),
  ];
  return schemas;
}
