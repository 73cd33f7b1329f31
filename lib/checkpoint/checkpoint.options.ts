import { MAX_TIMER_DURATION_MS, parseDuration } from '../scheduling/duration';
import {
  DEFAULT_CHECKPOINT_INTERVAL_MS,
  DEFAULT_CHECKPOINT_MAX_UPDATES,
  MAX_CHECKPOINT_MAX_UPDATES,
  MIN_CHECKPOINT_INTERVAL_MS,
} from './checkpoint.constants';
import type { CheckpointOptions, ResolvedCheckpointOptions } from './checkpoint.interface';

/** Throws the caller's error naming the option (`checkpoint.maxUpdates`) and its value. */
type Fail = (option: string, value: unknown, reason: string) => never;

export const DEFAULT_CHECKPOINT_OPTIONS: ResolvedCheckpointOptions = {
  maxUpdates: DEFAULT_CHECKPOINT_MAX_UPDATES,
  interval: DEFAULT_CHECKPOINT_INTERVAL_MS,
};

/**
 * Validates `checkpoint` options (the module's, or a job's): returns the ones given, each checked.
 * The module's fill in what a job's leave out (`{ ...module, ...job }`).
 */
export function checkCheckpointOptions(options: CheckpointOptions | undefined, fail: Fail): Partial<ResolvedCheckpointOptions> {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    fail('checkpoint', options, "expected an object such as { maxUpdates: 100, interval: '5s' }");
  }
  const checked: Partial<ResolvedCheckpointOptions> = {};
  const { maxUpdates, interval } = options;
  if (maxUpdates !== undefined) {
    if (!Number.isInteger(maxUpdates) || maxUpdates < 1 || maxUpdates > MAX_CHECKPOINT_MAX_UPDATES) {
      fail('checkpoint.maxUpdates', maxUpdates, `expected a whole number of updates from 1 to ${MAX_CHECKPOINT_MAX_UPDATES}`);
    }
    checked.maxUpdates = maxUpdates;
  }
  if (interval !== undefined) {
    const ms = parseDuration(interval);
    if (ms === undefined || ms < MIN_CHECKPOINT_INTERVAL_MS || ms > MAX_TIMER_DURATION_MS) {
      fail('checkpoint.interval', interval, "expected a duration from 1 s to 24 days, in ms or such as '5s'");
    }
    checked.interval = ms;
  }
  return checked;
}
