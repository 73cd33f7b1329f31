import type { MigrationInterface, QueryRunner } from 'typeorm';
import { SNAPSHOT_MIGRATION_NAME } from './migration-name';

/**
 * The snapshots' table on SQLite (`dsched_snapshot`), as `schedulerEntities('sqlite')` describes
 * it. The second migration: for databases that ran the records' first one. Published: never
 * change what `up` does.
 */
export class DschedSnapshotsSqlite1795500000000 implements MigrationInterface {
  name = SNAPSHOT_MIGRATION_NAME;

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "dsched_snapshot" (` +
        `"id" integer PRIMARY KEY AUTOINCREMENT NOT NULL, ` +
        `"prefix" varchar(200) NOT NULL, ` +
        `"format" integer NOT NULL, ` +
        `"written_at" datetime(3) NOT NULL, ` +
        `"written_by" varchar(200) NOT NULL, ` +
        `"job_count" integer NOT NULL, ` +
        `"content" text NOT NULL)`,
    );
    await queryRunner.query(`CREATE INDEX "IDX_dsched_snapshot_prefix" ON "dsched_snapshot" ("prefix", "id")`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "dsched_snapshot"`);
  }
}
