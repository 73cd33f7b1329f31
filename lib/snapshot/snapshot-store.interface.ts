/** What a store is told of the snapshot it saves, besides its text. */
export interface SnapshotMeta {
  prefix: string;
  format: number;
  writtenAt: number;
  writtenBy: string;
  jobCount: number;
}

/** A stored snapshot, undecoded: its text and where it was read (for messages). */
export interface StoredSnapshot {
  text: string;
  /** Where it is, in words: `file "/var/lib/app/sched.json"`, `row 12 of table "dsched_snapshot"`. */
  location: string;
}

/**
 * Where snapshots are kept. A store keeps the newest `keep` snapshots of each prefix and answers
 * the newest. Implementations: `FileSnapshotStore` (a file and its rotations) and
 * `TypeOrmSnapshotStore` (the `dsched_snapshot` table, with `records`).
 *
 * Invariants: `save` either stores the whole snapshot or nothing readable (a reader never sees
 * half a snapshot); `readNewest` answers the last snapshot saved completely, or null if none.
 * Both reject when the storage cannot be reached; the caller counts and retries.
 */
export interface SnapshotStore {
  /** Where snapshots go, in words, for log lines and `status()`. */
  readonly description: string;
  save(text: string, meta: SnapshotMeta): Promise<void>;
  readNewest(prefix: string): Promise<StoredSnapshot | null>;
}
