import type { MigrationInterface, QueryRunner } from 'typeorm';
import { SCHEDULER_MIGRATION_NAME } from './migration-name';

const TABLE_OPTIONS = 'ENGINE=InnoDB DEFAULT CHARSET=utf8mb4';

/**
 * The execution records on MySQL and MariaDB, as `schedulerEntities('mysql')` describes them:
 * InnoDB, utf8mb4 (with the server's default collation for it), BIGINT ids, and MEDIUMTEXT for a
 * task's log (TEXT stops at 64 KiB). Published: never change what `up` does (see
 * `schedulerMigrations`).
 */
export class DschedRecordsMysql1795400000000 implements MigrationInterface {
  name = SCHEDULER_MIGRATION_NAME;

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      'CREATE TABLE `dsched_execution` (' +
        '`id` bigint NOT NULL AUTO_INCREMENT, ' +
        '`vendor_type` varchar(64) NOT NULL, ' +
        '`vendor_id` varchar(64) NULL, ' +
        '`status` varchar(16) NOT NULL, ' +
        '`status_message` text NULL, ' +
        '`metrics` text NULL, ' +
        '`trigger` varchar(16) NOT NULL, ' +
        '`extra_attrs` text NOT NULL, ' +
        '`start_time` datetime(3) NOT NULL, ' +
        '`update_time` datetime(3) NOT NULL, ' +
        '`end_time` datetime(3) NULL, ' +
        '`job_name` varchar(200) NULL, ' +
        '`scheduled_at` datetime(3) NULL, ' +
        '`due_at` datetime(3) NULL, ' +
        '`fencing_token` bigint NULL, ' +
        'INDEX `IDX_dsched_execution_vendor` (`vendor_type`, `vendor_id`), ' +
        'INDEX `IDX_dsched_execution_status` (`status`, `update_time`), ' +
        'INDEX `IDX_dsched_execution_start` (`start_time`), ' +
        'UNIQUE INDEX `UQ_dsched_execution_due` (`job_name`, `due_at`), ' +
        `PRIMARY KEY (\`id\`)) ${TABLE_OPTIONS}`,
    );
    await queryRunner.query(
      'CREATE TABLE `dsched_task` (' +
        '`id` bigint NOT NULL AUTO_INCREMENT, ' +
        '`vendor_type` varchar(64) NOT NULL, ' +
        '`execution_id` bigint NOT NULL, ' +
        '`job_name` varchar(200) NOT NULL, ' +
        '`parameters` text NOT NULL, ' +
        '`status` varchar(16) NOT NULL, ' +
        '`status_message` text NULL, ' +
        '`run_count` int NOT NULL DEFAULT 0, ' +
        '`job_id` varchar(64) NOT NULL, ' +
        '`extra_attrs` text NOT NULL, ' +
        '`creation_time` datetime(3) NOT NULL, ' +
        '`start_time` datetime(3) NULL, ' +
        '`update_time` datetime(3) NOT NULL, ' +
        '`end_time` datetime(3) NULL, ' +
        '`status_revision` bigint NOT NULL DEFAULT 0, ' +
        '`fencing_token` bigint NOT NULL DEFAULT 0, ' +
        'INDEX `IDX_dsched_task_execution` (`execution_id`, `status`), ' +
        'INDEX `IDX_dsched_task_vendor` (`vendor_type`, `status`), ' +
        'UNIQUE INDEX `UQ_dsched_task_job` (`job_id`), ' +
        `PRIMARY KEY (\`id\`)) ${TABLE_OPTIONS}`,
    );
    await queryRunner.query(
      'CREATE TABLE `dsched_task_log` (' +
        '`task_id` bigint NOT NULL, ' +
        '`content` mediumtext NOT NULL, ' +
        '`dropped_lines` int NOT NULL DEFAULT 0, ' +
        '`update_time` datetime(3) NOT NULL, ' +
        `PRIMARY KEY (\`task_id\`)) ${TABLE_OPTIONS}`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE `dsched_task_log`');
    await queryRunner.query('DROP TABLE `dsched_task`');
    await queryRunner.query('DROP TABLE `dsched_execution`');
  }
}
