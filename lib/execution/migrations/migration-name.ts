/**
 * The name TypeORM records in its migrations table: the same for every database, since an app
 * runs the migrations of one. The trailing 13 digits are the timestamp TypeORM orders by.
 */
export const SCHEDULER_MIGRATION_NAME = 'DschedRecords1795400000000';

/** The snapshots' table (`dsched_snapshot`): the second migration, after the records' tables. */
export const SNAPSHOT_MIGRATION_NAME = 'DschedSnapshots1795500000000';

/** The task's last checkpoint (`checkpoint_state`, `checkpoint_saved_at` on `dsched_task`): the third migration. */
export const TASK_CHECKPOINT_MIGRATION_NAME = 'DschedTaskCheckpoint1795600000000';
