import type { MigrationInterface, QueryRunner } from 'typeorm';
import { TASK_CHECKPOINT_MIGRATION_NAME } from './migration-name';

/**
 * The task's last checkpoint on PostgreSQL: two nullable columns on `dsched_task`, as
 * `schedulerEntities('postgres')` describes them. The third migration: for databases that ran
 * the first two. Published: never change what `up` does (see `schedulerMigrations`).
 */
export class DschedTaskCheckpointPostgres1795600000000 implements MigrationInterface {
  name = TASK_CHECKPOINT_MIGRATION_NAME;

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "dsched_task" ADD "checkpoint_state" text`);
    await queryRunner.query(`ALTER TABLE "dsched_task" ADD "checkpoint_saved_at" timestamptz(3)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "dsched_task" DROP COLUMN "checkpoint_saved_at"`);
    await queryRunner.query(`ALTER TABLE "dsched_task" DROP COLUMN "checkpoint_state"`);
  }
}
