import type { MigrationInterface } from 'typeorm';
import type { RecordsDatabase } from '../records.dialect';
import { DschedRecordsMysql1795400000000 } from './mysql';
import { DschedRecordsPostgres1795400000000 } from './postgres';
import { DschedRecordsSqlite1795400000000 } from './sqlite';

/** A TypeORM migration class, as the DataSource's `migrations` option takes it. */
export type SchedulerMigration = new () => MigrationInterface;

const MIGRATIONS: Record<RecordsDatabase, SchedulerMigration[]> = {
  postgres: [DschedRecordsPostgres1795400000000],
  mysql: [DschedRecordsMysql1795400000000],
  sqlite: [DschedRecordsSqlite1795400000000],
};

/**
 * The TypeORM migrations that create the execution-record tables (`dsched_execution`,
 * `dsched_task`, `dsched_task_log`), for production apps that run migrations rather than
 * `synchronize`. `'mysql'` covers MySQL and MariaDB; `'sqlite'` any SQLite driver.
 *
 * ```ts
 * new DataSource({
 *   type: 'postgres',
 *   // ...
 *   entities: [...schedulerEntities(), ...yours],
 *   migrations: [...schedulerMigrations('postgres'), ...yours],
 *   migrationsRun: true, // or run `typeorm migration:run`
 * });
 * ```
 *
 * The PostgreSQL and MySQL schemas are wider than what `synchronize` derives from the entities
 * (BIGINT ids; `timestamptz` on PostgreSQL; MEDIUMTEXT logs on MySQL), so do not combine them with
 * `synchronize: true`, which would narrow them back. A database whose tables `synchronize`
 * already created must mark this migration as run instead of running it.
 */
export function schedulerMigrations(database: RecordsDatabase): SchedulerMigration[] {
  const migrations = MIGRATIONS[database];
  if (!migrations) throw new Error(`Execution-record migrations exist for 'postgres', 'mysql' and 'sqlite', not '${String(database)}'.`);
  return [...migrations];
}
