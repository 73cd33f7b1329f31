import type { MigrationInterface, QueryRunner } from 'typeorm';
import { SNAPSHOT_MIGRATION_NAME } from './migration-name';

/**
 * The snapshots' table on MySQL and MariaDB (`dsched_snapshot`), as `schedulerEntities('mysql')`
 * describes it: LONGTEXT content (a snapshot of 10,000 jobs is several MB). The second migration:
 * for databases that ran the records' first one. Published: never change what `up` does.
 */
export class DschedSnapshotsMysql1795500000000 implements MigrationInterface {
  name = SNAPSHOT_MIGRATION_NAME;

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      'CREATE TABLE `dsched_snapshot` (' +
        '`id` bigint NOT NULL AUTO_INCREMENT, ' +
        '`prefix` varchar(200) NOT NULL, ' +
        '`format` int NOT NULL, ' +
        '`written_at` datetime(3) NOT NULL, ' +
        '`written_by` varchar(200) NOT NULL, ' +
        '`job_count` int NOT NULL, ' +
        '`content` longtext NOT NULL, ' +
        'INDEX `IDX_dsched_snapshot_prefix` (`prefix`, `id`), ' +
        'PRIMARY KEY (`id`)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4',
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE `dsched_snapshot`');
  }
}
