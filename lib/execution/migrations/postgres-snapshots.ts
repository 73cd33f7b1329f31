import type { MigrationInterface, QueryRunner } from 'typeorm';
import { SNAPSHOT_MIGRATION_NAME } from './migration-name';

/**
 * The snapshots' table on PostgreSQL (`dsched_snapshot`), as `schedulerEntities('postgres')`
 * describes it. The second migration: for databases that ran the records' first one. Published:
 * never change what `up` does (see `schedulerMigrations`).
 */
export class DschedSnapshotsPostgres1795500000000 implements MigrationInterface {
  name = SNAPSHOT_MIGRATION_NAME;

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "dsched_snapshot" (` +
        `"id" BIGSERIAL NOT NULL, ` +
        `"prefix" character varying(200) NOT NULL, ` +
        `"format" integer NOT NULL, ` +
        `"written_at" timestamptz(3) NOT NULL, ` +
        `"written_by" character varying(200) NOT NULL, ` +
        `"job_count" integer NOT NULL, ` +
        `"content" text NOT NULL, ` +
        `CONSTRAINT "PK_45020e5219bbbcbb9c6a4ea513f" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE INDEX "IDX_dsched_snapshot_prefix" ON "dsched_snapshot" ("prefix", "id")`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "dsched_snapshot"`);
  }
}
