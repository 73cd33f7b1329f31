/** One stored snapshot, a row of `dsched_snapshot` (database store). Plain class: no TypeORM import. */
export class SnapshotRecord {
  id!: number;
  /** The key prefix whose jobs it holds. */
  prefix!: string;
  /** The snapshot format of `content`. */
  format!: number;
  /** The coordinator's clock when the state was read. */
  writtenAt!: Date;
  writtenBy!: string;
  jobCount!: number;
  /** The encoded snapshot (JSON). */
  content!: string;
}
