// The execution records' public API: `nestjs-distributed-scheduler/records`. Its declarations
// refer to TypeORM's types (EntityManager, EntitySchema, MigrationInterface), so it lives apart
// from the main entry: an app without TypeORM compiles against the main entry alone.
export { Execution } from './execution/execution.entity';
export type { ExecutionMetrics, JsonObject } from './execution/execution.entity';
export { Task } from './execution/task.entity';
export { TaskLog } from './execution/task-log.entity';
export { schedulerEntities } from './execution/entity-schemas';
export { EXECUTION_STATUS, EXECUTION_TRIGGERS, TASK_STATUS, FINAL_STATUSES, isFinalStatus } from './execution/execution.constants';
export type { ExecutionStatus, ExecutionTrigger, TaskStatus } from './execution/execution.constants';
export { ExecutionManager } from './execution/execution.manager';
export type { RecordingStatus } from './execution/execution.manager';
export { TaskManager } from './execution/task.manager';
export type { TaskJob, TaskSpec, TaskStatusReport, TaskUpdatableField } from './execution/task.manager';
export type { StatusChangeResult } from './execution/status-change.handler';
export { SweepManager } from './execution/sweep.manager';
export { VendorHookRegistry } from './execution/vendor-hooks.registry';
export { OnCheckIn, OnExecutionStatusChange, OnTaskStatusChange } from './execution/vendor-hooks.decorators';
export type { CheckInProcessor, ExecutionStatusChangeHook, TaskStatusChangeHook } from './execution/vendor-hooks.interface';
export type { ExecutionQuery, TaskQuery, TimeRange } from './execution/record-query.interface';
export { schedulerMigrations } from './execution/migrations';
export type { SchedulerMigration } from './execution/migrations';
export { SnapshotRecord } from './snapshot/snapshot.entity';
export { TypeOrmSnapshotStore } from './snapshot/typeorm-snapshot.store';
