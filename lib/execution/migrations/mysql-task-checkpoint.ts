import type { MigrationInterface, QueryRunner } from 'typeorm';
import { TASK_CHECKPOINT_MIGRATION_NAME } from './migration-name';

/**
 * The task's last checkpoint on MySQL and MariaDB: two nullable columns on `dsched_task`, as
 * `schedulerEntities('mysql')` describes them. MEDIUMTEXT state, as the log: a checkpoint may
 * hold 512 KB of JSON, past TEXT's 64 KB. The third migration: for databases that ran the first
 * two. Published: never change what `up` does.
 */
export class DschedTaskCheckpointMysql1795600000000 implements MigrationInterface {
  name = TASK_CHECKPOINT_MIGRATION_NAME;

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE `dsched_task` ADD `checkpoint_state` mediumtext NULL, ADD `checkpoint_saved_at` datetime(3) NULL');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE `dsched_task` DROP COLUMN `checkpoint_saved_at`, DROP COLUMN `checkpoint_state`');
  }
}
