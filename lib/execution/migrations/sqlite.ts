import type { MigrationInterface, QueryRunner } from 'typeorm';
import { SCHEDULER_MIGRATION_NAME } from './migration-name';

/**
 * The execution records on SQLite, as `schedulerEntities('sqlite')` describes them (SQLite's
 * INTEGER PRIMARY KEY is 64-bit already; times are `datetime(3)` text). Published: never change
 * what `up` does (see `schedulerMigrations`).
 */
export class DschedRecordsSqlite1795400000000 implements MigrationInterface {
  name = SCHEDULER_MIGRATION_NAME;

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "dsched_execution" (` +
        `"id" integer PRIMARY KEY AUTOINCREMENT NOT NULL, ` +
        `"vendor_type" varchar(64) NOT NULL, ` +
        `"vendor_id" varchar(64), ` +
        `"status" varchar(16) NOT NULL, ` +
        `"status_message" text, ` +
        `"metrics" text, ` +
        `"trigger" varchar(16) NOT NULL, ` +
        `"extra_attrs" text NOT NULL, ` +
        `"start_time" datetime(3) NOT NULL, ` +
        `"update_time" datetime(3) NOT NULL, ` +
        `"end_time" datetime(3), ` +
        `"job_name" varchar(200), ` +
        `"scheduled_at" datetime(3), ` +
        `"due_at" datetime(3), ` +
        `"fencing_token" bigint)`,
    );
    await queryRunner.query(`CREATE INDEX "IDX_dsched_execution_vendor" ON "dsched_execution" ("vendor_type", "vendor_id")`);
    await queryRunner.query(`CREATE INDEX "IDX_dsched_execution_status" ON "dsched_execution" ("status", "update_time")`);
    await queryRunner.query(`CREATE INDEX "IDX_dsched_execution_start" ON "dsched_execution" ("start_time")`);
    await queryRunner.query(`CREATE UNIQUE INDEX "UQ_dsched_execution_due" ON "dsched_execution" ("job_name", "due_at")`);

    await queryRunner.query(
      `CREATE TABLE "dsched_task" (` +
        `"id" integer PRIMARY KEY AUTOINCREMENT NOT NULL, ` +
        `"vendor_type" varchar(64) NOT NULL, ` +
        `"execution_id" bigint NOT NULL, ` +
        `"job_name" varchar(200) NOT NULL, ` +
        `"parameters" text NOT NULL, ` +
        `"status" varchar(16) NOT NULL, ` +
        `"status_message" text, ` +
        `"run_count" integer NOT NULL DEFAULT (0), ` +
        `"job_id" varchar(64) NOT NULL, ` +
        `"extra_attrs" text NOT NULL, ` +
        `"creation_time" datetime(3) NOT NULL, ` +
        `"start_time" datetime(3), ` +
        `"update_time" datetime(3) NOT NULL, ` +
        `"end_time" datetime(3), ` +
        `"status_revision" bigint NOT NULL DEFAULT (0), ` +
        `"fencing_token" bigint NOT NULL DEFAULT (0))`,
    );
    await queryRunner.query(`CREATE INDEX "IDX_dsched_task_execution" ON "dsched_task" ("execution_id", "status")`);
    await queryRunner.query(`CREATE INDEX "IDX_dsched_task_vendor" ON "dsched_task" ("vendor_type", "status")`);
    await queryRunner.query(`CREATE UNIQUE INDEX "UQ_dsched_task_job" ON "dsched_task" ("job_id")`);

    await queryRunner.query(
      `CREATE TABLE "dsched_task_log" (` +
        `"task_id" bigint PRIMARY KEY NOT NULL, ` +
        `"content" text NOT NULL, ` +
        `"dropped_lines" integer NOT NULL DEFAULT (0), ` +
        `"update_time" datetime(3) NOT NULL)`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "dsched_task_log"`);
    await queryRunner.query(`DROP TABLE "dsched_task"`);
    await queryRunner.query(`DROP TABLE "dsched_execution"`);
  }
}
