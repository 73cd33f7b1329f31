/** A run's checkpoints are flushed after this many `ctx.checkpoint` calls, unless configured. */
export const DEFAULT_CHECKPOINT_MAX_UPDATES = 100;
/** ... or this long (ms) after the first update not yet flushed, unless configured. */
export const DEFAULT_CHECKPOINT_INTERVAL_MS = 5_000;
/** The shortest flush interval: as Winlogbeat's checkpoint, no more than one flush a second per run. */
export const MIN_CHECKPOINT_INTERVAL_MS = 1_000;
/** The most `ctx.checkpoint` calls one flush may wait for. */
export const MAX_CHECKPOINT_MAX_UPDATES = 1_000_000;
/**
 * The largest checkpoint, in bytes of its JSON text (UTF-8): a checkpoint travels with every
 * claim of its job, so it is meant for a cursor or a few counters, not for data.
 */
export const MAX_CHECKPOINT_BYTES = 512 * 1024;
