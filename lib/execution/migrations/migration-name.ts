/**
 * The name TypeORM records in its migrations table: the same for every database, since an app
 * runs the migrations of one. The trailing 13 digits are the timestamp TypeORM orders by.
 */
export const SCHEDULER_MIGRATION_NAME = 'DschedRecords1795400000000';
