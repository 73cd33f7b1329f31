export { SchedulerModule } from './scheduler.module';
export type { SchedulerModuleAsyncOptions } from './scheduler.module-definition';
export type { RedisConnection, SchedulerModuleOptions, SchedulerOptionsFactory } from './scheduler-options.interface';
export { DistributedJob } from './scheduling/distributed-job.decorator';
export type { DistributedJobOptions, OverlapPolicy } from './scheduling/distributed-job-options.interface';
export type { MissedPolicy } from './scheduling/missed-runs';
export { JOB_TRIGGERS } from './scheduling/job-context.interface';
export type { JobContext, JobTrigger } from './scheduling/job-context.interface';
export type { CheckpointOptions, JsonValue, LastCheckpoint } from './checkpoint/checkpoint.interface';
export { MAX_CHECKPOINT_BYTES } from './checkpoint/checkpoint.constants';
export { JobScheduler } from './scheduling/job-scheduler.service';
export type { JobContinuous, JobDescription, JobLastRun, JobPendingRetry, JobRunInfo, JobSchedule, ScheduleUpdate } from './scheduling/job-description.interface';
export type { RetryBackoff, RetryOptions } from './retry/retry.interface';
export type { ContinuousJobOptions } from './continuous';
export {
  ClusterMembership,
  PlacementStrategyRegistry,
  RegisterPlacementStrategy,
  randomStrategy,
  spreadStrategy,
  stickyStrategy,
} from './cluster';
export type {
  ClusterMember,
  DepartureReason,
  JobHostsOptions,
  Labels,
  MemberRun,
  MemberSummary,
  MembershipEvent,
  PlacementCandidate,
  PlacementInput,
  PlacementStrategy,
  WorkerOptions,
} from './cluster';
export type { TriggerAccepted, TriggerReceipt, TriggerSkipped, TriggerSkipReason } from './scheduling/trigger-receipt.interface';
export type { RunStatus, ExportedJob } from './coordination/coordinator.interface';
export { SnapshotPersister } from './snapshot/snapshot.persister';
export type { SnapshotReason, SnapshotStatus } from './snapshot/snapshot.persister';
export type { SnapshotOptions } from './snapshot/snapshot.options';
export type { SnapshotStore, SnapshotMeta, StoredSnapshot } from './snapshot/snapshot-store.interface';
export { FileSnapshotStore } from './snapshot/file-snapshot.store';
export { decodeSnapshot, encodeSnapshot, SNAPSHOT_FORMAT, readableSnapshotFormats } from './snapshot/snapshot-format';
export type { Snapshot } from './snapshot/snapshot-format';
export { SNAPSHOT_JOB_NAME } from './snapshot/snapshot.constants';
export type { MissedFires, SchedulerErrorEvent, SchedulerErrorPhase } from './scheduling/scheduler-error-event.interface';
export {
  ContinuousJobError,
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
  InvalidQueryError,
  CorruptJobError,
  InvalidCheckpointError,
  SnapshotFormatError,
  MissedFiresError,
  DuplicatePlacementStrategyError,
  InvalidPlacementStrategyError,
} from './errors';
export type { AbortCause } from './errors';

// The `records` option's type is here; the records' API (managers, entities, migrations, hooks)
// is in `nestjs-distributed-scheduler/records` (lib/records.ts), because its declarations need
// TypeORM's and this entry's must not.
export type { RecordsOptions } from './execution/records-options.interface';
export type { RecordsDatabase } from './execution/execution.constants';
export type { SchedulerModuleExtras } from './scheduler.module-definition';
