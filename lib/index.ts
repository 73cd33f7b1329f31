export { SchedulerModule } from './scheduler.module';
export type { SchedulerModuleAsyncOptions } from './scheduler.module-definition';
export type { RedisConnection, SchedulerModuleOptions, SchedulerOptionsFactory } from './scheduler-options.interface';
export { DistributedJob } from './scheduling/distributed-job.decorator';
export type { DistributedJobOptions, OverlapPolicy } from './scheduling/distributed-job-options.interface';
export { JOB_TRIGGERS } from './scheduling/job-context.interface';
export type { JobContext, JobTrigger } from './scheduling/job-context.interface';
export { JobScheduler } from './scheduling/job-scheduler.service';
export type { JobDescription, JobLastRun, JobRunInfo, JobSchedule, ScheduleUpdate } from './scheduling/job-description.interface';
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
  UnknownJobError,
} from './errors';
export type { AbortCause } from './errors';
