import type { MigrationInterface, QueryRunner } from 'typeorm';
import { SCHEDULER_MIGRATION_NAME } from './migration-name';

/**
 * The execution records on PostgreSQL, as `schedulerEntities('postgres')` describes them: BIGINT
 * ids and `timestamptz(3)` times (absolute instants, whatever the session's time zone). The JSON
 * columns are `text`, as `simple-json` writes them; queries cast with `::jsonb`. Published: never
 * change what `up` does (see `schedulerMigrations`).
 */
export class DschedRecordsPostgres1795400000000 implements MigrationInterface {
  name = SCHEDULER_MIGRATION_NAME;

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "dsched_execution" (` +
        `"id" BIGSERIAL NOT NULL, ` +
        `"vendor_type" character varying(64) NOT NULL, ` +
        `"vendor_id" character varying(64), ` +
        `"status" character varying(16) NOT NULL, ` +
        `"status_message" text, ` +
        `"metrics" text, ` +
        `"trigger" character varying(16) NOT NULL, ` +
        `"extra_attrs" text NOT NULL, ` +
        `"start_time" timestamptz(3) NOT NULL, ` +
        `"update_time" timestamptz(3) NOT NULL, ` +
        `"end_time" timestamptz(3), ` +
        `"job_name" character varying(200), ` +
        `"scheduled_at" timestamptz(3), ` +
        `"due_at" timestamptz(3), ` +
        `"fencing_token" bigint, ` +
        `CONSTRAINT "PK_4df2754646aa7050f51d480a4b7" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE INDEX "IDX_dsched_execution_vendor" ON "dsched_execution" ("vendor_type", "vendor_id")`);
    await queryRunner.query(`CREATE INDEX "IDX_dsched_execution_status" ON "dsched_execution" ("status", "update_time")`);
    await queryRunner.query(`CREATE INDEX "IDX_dsched_execution_start" ON "dsched_execution" ("start_time")`);
    await queryRunner.query(`CREATE UNIQUE INDEX "UQ_dsched_execution_due" ON "dsched_execution" ("job_name", "due_at")`);

    await queryRunner.query(
      `CREATE TABLE "dsched_task" (` +
        `"id" BIGSERIAL NOT NULL, ` +
        `"vendor_type" character varying(64) NOT NULL, ` +
        `"execution_id" bigint NOT NULL, ` +
        `"job_name" character varying(200) NOT NULL, ` +
        `"parameters" text NOT NULL, ` +
        `"status" character varying(16) NOT NULL, ` +
        `"status_message" text, ` +
        `"run_count" integer NOT NULL DEFAULT 0, ` +
        `"job_id" character varying(64) NOT NULL, ` +
        `"extra_attrs" text NOT NULL, ` +
        `"creation_time" timestamptz(3) NOT NULL, ` +
        `"start_time" timestamptz(3), ` +
        `"update_time" timestamptz(3) NOT NULL, ` +
        `"end_time" timestamptz(3), ` +
        `"status_revision" bigint NOT NULL DEFAULT 0, ` +
        `"fencing_token" bigint NOT NULL DEFAULT 0, ` +
        `CONSTRAINT "PK_004a258980628d69bd9e40f5f0d" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE INDEX "IDX_dsched_task_execution" ON "dsched_task" ("execution_id", "status")`);
    await queryRunner.query(`CREATE INDEX "IDX_dsched_task_vendor" ON "dsched_task" ("vendor_type", "status")`);
    await queryRunner.query(`CREATE UNIQUE INDEX "UQ_dsched_task_job" ON "dsched_task" ("job_id")`);

    await queryRunner.query(
      `CREATE TABLE "dsched_task_log" (` +
        `"task_id" bigint NOT NULL, ` +
        `"content" text NOT NULL, ` +
        `"dropped_lines" integer NOT NULL DEFAULT 0, ` +
        `"update_time" timestamptz(3) NOT NULL, ` +
        `CONSTRAINT "PK_d7940d05605e9264bf09373aa43" PRIMARY KEY ("task_id"))`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "dsched_task_log"`);
    await queryRunner.query(`DROP TABLE "dsched_task"`);
    await queryRunner.query(`DROP TABLE "dsched_execution"`);
  }
}
