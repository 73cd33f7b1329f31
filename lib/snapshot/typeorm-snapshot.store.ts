import type { DataSource, Repository } from 'typeorm';
import { SNAPSHOT_TABLE } from './snapshot.constants';
import { SnapshotRecord } from './snapshot.entity';
import type { SnapshotMeta, SnapshotStore, StoredSnapshot } from './snapshot-store.interface';

/**
 * Snapshots in the records' database: one row of `dsched_snapshot` each (created by the second
 * migration of `schedulerMigrations(database)`), the newest `keep` of each prefix kept. A row is
 * one INSERT, so a reader never sees half a snapshot.
 */
export class TypeOrmSnapshotStore implements SnapshotStore {
  constructor(
    private readonly dataSource: DataSource,
    private readonly keep: number,
  ) {}

  get description(): string {
    const name = (this.dataSource.options as { name?: string }).name;
    return `table "${SNAPSHOT_TABLE}"${name && name !== 'default' ? ` of DataSource "${name}"` : ''}`;
  }

  private get rows(): Repository<SnapshotRecord> {
    return this.dataSource.getRepository(SnapshotRecord);
  }

  async save(text: string, meta: SnapshotMeta): Promise<void> {
    await this.rows.insert({
      prefix: meta.prefix,
      format: meta.format,
      writtenAt: new Date(meta.writtenAt),
      writtenBy: meta.writtenBy.slice(0, 200),
      jobCount: meta.jobCount,
      content: text,
    });
    // The newest `keep` of this prefix stay; the older ones go.
    const newest = await this.rows.find({ select: { id: true }, where: { prefix: meta.prefix }, order: { id: 'DESC' }, take: this.keep });
    if (newest.length < this.keep) return;
    const oldestKept = newest[newest.length - 1].id;
    await this.rows
      .createQueryBuilder()
      .delete()
      .where('prefix = :prefix AND id < :id', { prefix: meta.prefix, id: oldestKept })
      .execute();
  }

  async readNewest(prefix: string): Promise<StoredSnapshot | null> {
    const row = await this.rows.findOne({ where: { prefix }, order: { id: 'DESC' } });
    return row ? { text: row.content, location: `row ${row.id} of table "${SNAPSHOT_TABLE}"` } : null;
  }
}
