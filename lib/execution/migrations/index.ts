import type { MigrationInterface } from 'typeorm';
import type { RecordsDatabase } from '../execution.constants';
import { DschedRecordsMysql1795400000000 } from './mysql';
import { DschedRecordsPostgres1795400000000 } from './postgres';
import { DschedRecordsSqlite1795400000000 } from './sqlite';
import { DschedSnapshotsMysql1795500000000 } from './mysql-snapshots';
import { DschedSnapshotsPostgres1795500000000 } from './postgres-snapshots';
import { DschedSnapshotsSqlite1795500000000 } from './sqlite-snapshots';
import { DschedTaskCheckpointMysql1795600000000 } from './mysql-task-checkpoint';
import { DschedTaskCheckpointPostgres1795600000000 } from './postgres-task-checkpoint';
import { DschedTaskCheckpointSqlite1795600000000 } from './sqlite-task-checkpoint';

/** A TypeORM migration class, as the DataSource's `migrations` option takes it. */
export type SchedulerMigration = new () => MigrationInterface;

const MIGRATIONS: Record<RecordsDatabase, SchedulerMigration[]> = {
  postgres: [DschedRecordsPostgres1795400000000, DschedSnapshotsPostgres1795500000000, DschedTaskCheckpointPostgres1795600000000],
  mysql: [DschedRecordsMysql1795400000000, DschedSnapshotsMysql1795500000000, DschedTaskCheckpointMysql1795600000000],
  sqlite: [DschedRecordsSqlite1795400000000, DschedSnapshotsSqlite1795500000000, DschedTaskCheckpointSqlite1795600000000],
};

/**
 * The TypeORM migrations that create the execution-record tables (`dsched_execution`,
 * `dsched_task`, `dsched_task_log`) and, second, the snapshots' table (`dsched_snapshot`),
 * for production apps that run migrations rather than `synchronize`. `'mysql'` covers MySQL and
 * MariaDB; `'sqlite'` any SQLite driver.
 *
 * ```ts
 * new DataSource({
 *   type: 'postgres',
 *   // ...
 *   entities: [...schedulerEntities('postgres'), ...yours],
 *   migrations: [...schedulerMigrations('postgres'), ...yours],
 *   migrationsRun: true, // or run `typeorm migration:run`
 * });
 * ```
 *
 * They create exactly what `schedulerEntities(database)` (or `records.database` in
 * `SchedulerModule`) describes for the same database: after them, `synchronize` and
 * `migration:generate` find nothing to change. The entities without a database (those of
 * earlier versions) differ on PostgreSQL and MySQL: name the database.
 *
 * Published migrations never change: a later schema change comes as a further migration in this
 * list, written for databases that ran the earlier ones.
 */
export function schedulerMigrations(database: RecordsDatabase): SchedulerMigration[] {
  const migrations = MIGRATIONS[database];
  if (!migrations) throw new Error(`Execution-record migrations exist for 'postgres', 'mysql' and 'sqlite', not '${String(database)}'.`);
  return [...migrations];
}
