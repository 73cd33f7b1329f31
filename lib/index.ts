export { SchedulerModule } from './scheduler.module';
export type { SchedulerModuleAsyncOptions } from './scheduler.module-definition';
export type { RedisConnection, SchedulerModuleOptions, SchedulerOptionsFactory } from './scheduler-options.interface';
export { DistributedJob } from './scheduling/distributed-job.decorator';
export type { DistributedJobOptions, OverlapPolicy } from './scheduling/distributed-job-options.interface';
export { JOB_TRIGGERS } from './scheduling/job-context.interface';
export type { JobContext, JobTrigger } from './scheduling/job-context.interface';
export { JobScheduler } from './scheduling/job-scheduler.service';
export type { JobDescription, JobLastRun, JobRunInfo, JobSchedule, ScheduleUpdate } from './scheduling/job-description.interface';
export type { TriggerAccepted, TriggerReceipt, TriggerSkipped, TriggerSkipReason } from './scheduling/trigger-receipt.interface';
export type { SchedulerErrorEvent, SchedulerErrorPhase } from './scheduling/scheduler-error-event.interface';
export type { RunStatus } from './coordination/coordinator.interface';
export {
  CoordinatorUnavailableError,
  DuplicateJobError,
  EmbeddedInProductionError,
  InvalidJobOptionError,
  InvalidSchedulerOptionError,
  JobAbortedError,
  JobLockedError,
  RequestScopedJobError,
  SchedulerError,
  TooManyTriggersError,
  UnknownJobError,
  DuplicateVendorHookError,
  ExecutionNotFinalError,
  RecordNotFoundError,
  StopTimeoutError,
} from './errors';
export type { AbortCause } from './errors';

// Execution records (with `records`; TypeORM is needed only then)
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
export type { TaskJob, TaskUpdatableField } from './execution/task.manager';
export { SweepManager } from './execution/sweep.manager';
export { VendorHookRegistry } from './execution/vendor-hooks.registry';
export { OnCheckIn, OnExecutionStatusChange, OnTaskStatusChange } from './execution/vendor-hooks.decorators';
export type { CheckInProcessor, ExecutionStatusChangeHook, TaskStatusChangeHook } from './execution/vendor-hooks.interface';
export type { ExecutionQuery, TaskQuery, TimeRange } from './execution/record-query.interface';
export type { RecordsOptions } from './execution/records-options.interface';
export type { SchedulerModuleExtras } from './scheduler.module-definition';
export { schedulerMigrations } from './execution/migrations';
export type { SchedulerMigration } from './execution/migrations';
