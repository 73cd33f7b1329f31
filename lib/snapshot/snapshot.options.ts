import { InvalidSchedulerOptionError } from '../errors';
import { MAX_TIMER_DURATION_MS, parseDuration } from '../scheduling/duration';
import {
  DEFAULT_SNAPSHOT_EVERY_MS,
  DEFAULT_SNAPSHOT_KEEP,
  DEFAULT_SNAPSHOT_MAX_CHANGES,
  MAX_SNAPSHOT_KEEP,
  MAX_SNAPSHOT_MAX_CHANGES,
  MIN_SNAPSHOT_EVERY_MS,
} from './snapshot.constants';

/**
 * Snapshots of every job's shared state (schedule in force, pause, manual lock, last due time
 * served, last run, fencing counter, checkpoint), so that a Redis that lost its state, or an
 * embedded app that restarts, gets them back.
 */
export interface SnapshotOptions {
  /**
   * How often one replica of the cluster writes a snapshot (a built-in job, `dsched.snapshot`).
   * At least 1 s.
   * @default '30s'
   */
  every?: number | string;
  /**
   * A snapshot is also written once the cluster's change version (pauses, schedule updates,
   * locks, triggers, registrations) has moved this many times, whichever comes first.
   * @default 100
   */
  maxChanges?: number;
  /**
   * Keep snapshots in this file (and `file.1`, `file.2`, … for the older ones) instead of the
   * records' database. Required for snapshots without `records`, e.g. with the embedded
   * coordinator, so that a restarted app gets its runtime changes back.
   */
  file?: string;
  /**
   * How many snapshots are kept (the newest first).
   * @default 5
   */
  keep?: number;
}

export interface ResolvedSnapshotOptions {
  every: number;
  maxChanges: number;
  /** The file store's path; null: the records' database (if `records` is on). */
  file: string | null;
  keep: number;
  /** Set by the app (an object), not the default: without a store, that is an error. */
  explicit: boolean;
}

/** Defaults and validation of `snapshot`; null when it is `false`. Every error names the option and the value. */
export function resolveSnapshotOptions(options: SnapshotOptions | false | undefined): ResolvedSnapshotOptions | null {
  if (options === false) return null;
  const fail = (option: string, value: unknown, reason: string): never => {
    throw new InvalidSchedulerOptionError(option, value, reason);
  };
  if (options !== undefined && (typeof options !== 'object' || options === null || Array.isArray(options))) {
    fail('snapshot', options, "expected false or an object such as { every: '30s', file: '/var/lib/app/scheduler.json' }");
  }
  const given = options ?? {};
  const every = given.every === undefined ? DEFAULT_SNAPSHOT_EVERY_MS : parseDuration(given.every);
  if (every === undefined || every < MIN_SNAPSHOT_EVERY_MS || every > MAX_TIMER_DURATION_MS) {
    fail('snapshot.every', given.every, "expected a duration from 1 s to 24 days, in ms or such as '30s'");
  }
  const maxChanges = given.maxChanges ?? DEFAULT_SNAPSHOT_MAX_CHANGES;
  if (!Number.isInteger(maxChanges) || maxChanges < 1 || maxChanges > MAX_SNAPSHOT_MAX_CHANGES) {
    fail('snapshot.maxChanges', given.maxChanges, `expected a whole number of changes from 1 to ${MAX_SNAPSHOT_MAX_CHANGES}`);
  }
  if (given.file !== undefined && (typeof given.file !== 'string' || given.file.trim() === '' || /[\r\n\0]/.test(given.file))) {
    fail('snapshot.file', given.file, 'expected a file path');
  }
  const keep = given.keep ?? DEFAULT_SNAPSHOT_KEEP;
  if (!Number.isInteger(keep) || keep < 1 || keep > MAX_SNAPSHOT_KEEP) {
    fail('snapshot.keep', given.keep, `expected a whole number of snapshots from 1 to ${MAX_SNAPSHOT_KEEP}`);
  }
  return { every: every!, maxChanges, file: given.file ?? null, keep, explicit: options !== undefined };
}
