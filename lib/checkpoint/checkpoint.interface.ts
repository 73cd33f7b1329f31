/** A value `JSON.stringify` writes and `JSON.parse` reads back as it was. */
export type JsonValue = string | number | boolean | null | readonly JsonValue[] | { readonly [key: string]: JsonValue | undefined };

/** A job's last flushed checkpoint, as a run sees it when it starts (`ctx.lastCheckpoint`). */
export interface LastCheckpoint {
  /** The state passed to `ctx.checkpoint`, read back from its JSON. */
  readonly state: unknown;
  /** When the run that wrote it called `ctx.checkpoint` with it (on the coordinator's clock). */
  readonly savedAt: Date;
  /** The fencing token of the run that wrote it. */
  readonly fencingToken: number;
}

/** When a run's checkpoints are flushed to the coordinator (module option, or per job). */
export interface CheckpointOptions {
  /**
   * Flushes after this many `ctx.checkpoint` calls not yet flushed.
   * @default 100
   */
  maxUpdates?: number;
  /**
   * Flushes this long after the first `ctx.checkpoint` call not yet flushed (ms or a duration
   * string such as `'5s'`), at least 1 s.
   * @default 5000
   */
  interval?: number | string;
}

export interface ResolvedCheckpointOptions {
  maxUpdates: number;
  interval: number;
}

/** A checkpoint as the coordinator keeps it. */
export interface StoredCheckpoint {
  /** The state's JSON text. */
  state: string;
  /** Epoch ms, on the coordinator's clock. */
  savedAt: number;
  /** The fencing token of the run that wrote it. */
  fencingToken: number;
}

/**
 * `stale`: refused, the job's checkpoint is fenced at `floor` (a newer run wrote one, or was
 * claimed while one existed, or it was cleared at that token), above the writer's token.
 */
export type CheckpointSaveOutcome = { status: 'saved' } | { status: 'stale'; floor: number };

export function toLastCheckpoint(stored: StoredCheckpoint): LastCheckpoint {
  return { state: JSON.parse(stored.state) as unknown, savedAt: new Date(stored.savedAt), fencingToken: stored.fencingToken };
}
