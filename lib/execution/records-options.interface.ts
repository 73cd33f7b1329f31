import type { RecordsDatabase } from './execution.constants';

/**
 * Execution records: every run of a `@DistributedJob` as rows in the app's own database, through
 * TypeORM. Given to `SchedulerModule.forRoot/forRootAsync` next to the other options (for
 * `forRootAsync`, outside the factory: it decides which providers the module has).
 */
export interface RecordsOptions {
  /**
   * The name of the TypeORM DataSource holding the records (as given to `TypeOrmModule.forRoot`).
   * @default the default DataSource
   */
  dataSource?: string;
  /**
   * The database of that DataSource, as in `schedulerMigrations(database)`: `'mysql'` covers
   * MySQL and MariaDB, `'sqlite'` every SQLite driver. It picks the entity mapping registered for
   * `autoLoadEntities` (`schedulerEntities(database)`), which matches the migrations exactly, so
   * they combine with `synchronize` and `migration:generate`. The start fails if the DataSource
   * is of another database.
   * @default none: the mapping of earlier versions (INT ids, and `timestamp` without time zone
   * on PostgreSQL), equal to the migrations on SQLite only
   */
  database?: RecordsDatabase;
  /**
   * How many of the newest executions the built-in sweep keeps per vendor type (per job, unless
   * jobs set `vendorType`). A job's `retain` option and `retainByVendor` override it.
   * @default 50
   */
  retain?: number;
  /** Per vendor type overrides of `retain`. */
  retainByVendor?: Record<string, number>;
  /**
   * How often the built-in sweep runs (once across the cluster): a duration, or `false` for never.
   * @default '1h'
   */
  sweepEvery?: number | string | false;
  /**
   * The most bytes of log kept per task; beyond it the oldest lines are dropped.
   * @default 32768
   */
  logMaxBytes?: number;
}
