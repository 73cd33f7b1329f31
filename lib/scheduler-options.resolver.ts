import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { EmbeddedInProductionError, InvalidSchedulerOptionError } from './errors';
import { DEFAULT_KEY_PREFIX, DEFAULT_LOCK_TTL_MS, DEFAULT_SHUTDOWN_TIMEOUT_MS } from './scheduler.constants';
import type { RedisConnection, SchedulerModuleOptions } from './scheduler-options.interface';
import { MAX_TIMER_DURATION_MS, parseDuration } from './scheduling/duration';
import type { ResolvedCheckpointOptions } from './checkpoint/checkpoint.interface';
import { checkCheckpointOptions, DEFAULT_CHECKPOINT_OPTIONS } from './checkpoint/checkpoint.options';
import { ResolvedSnapshotOptions, resolveSnapshotOptions } from './snapshot/snapshot.options';
import { DEFAULT_MIN_PERIOD_MS, MAX_PERIOD_MS, MIN_PERIOD_FLOOR_MS, ScheduleBounds } from './scheduling/schedule-bounds';
import { checkMissedRuns, DEFAULT_MISSED_RUNS, MissedRuns } from './scheduling/missed-runs';
import type { ResolvedRetryOptions } from './retry/retry.interface';
import { checkRetryOptions } from './retry/retry.options';
import { ResolvedClusterOptions, resolveClusterOptions } from './cluster/cluster.options';

/** The module's options with every default applied, in one place. */
export interface ResolvedSchedulerOptions {
  redis: RedisConnection | undefined;
  keyPrefix: string;
  instanceId: string;
  lockTtl: number;
  shutdownTimeout: number;
  autoStart: boolean;
  /** The shortest and longest period any schedule may have, on every path that sets one. */
  bounds: ScheduleBounds;
  /** When runs' checkpoints are flushed, unless a job says otherwise. */
  checkpoint: ResolvedCheckpointOptions;
  /** Snapshots of the shared state; null when `snapshot: false`. Whether a store exists is decided with `records` (SnapshotPersister). */
  snapshot: ResolvedSnapshotOptions | null;
  /** The missed-run policy of jobs that set none of their own. */
  missedRuns: MissedRuns;
  /** The retry fields every job starts from (a job's own `retry` fields override them). */
  retry: Partial<ResolvedRetryOptions>;
  /** This replica as a member of the cluster: session TTL, labels, worker or API-only. */
  cluster: ResolvedClusterOptions;
}

/** Below this, extending the lease every third of it would flood Redis. */
const MIN_LOCK_TTL_MS = 500;

export function resolveSchedulerOptions(
  options: SchedulerModuleOptions,
  env: NodeJS.ProcessEnv = process.env,
): ResolvedSchedulerOptions {
  const redis = checkRedis(options.redis);
  if (redis === undefined && env.NODE_ENV === 'production' && options.allowEmbedded !== true) {
    throw new EmbeddedInProductionError();
  }
  const keyPrefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
  if (typeof keyPrefix !== 'string' || keyPrefix === '' || /[{}\s]/.test(keyPrefix)) {
    throw new InvalidSchedulerOptionError('keyPrefix', keyPrefix, 'expected a non-empty string without braces or spaces (it becomes a hash tag)');
  }
  const instanceId = options.instanceId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  if (typeof instanceId !== 'string' || instanceId === '' || /[\r\n]/.test(instanceId)) {
    throw new InvalidSchedulerOptionError('instanceId', instanceId, 'expected a non-empty string on one line');
  }
  const lockTtl = options.lockTtl === undefined ? DEFAULT_LOCK_TTL_MS : parseDuration(options.lockTtl);
  if (lockTtl === undefined || lockTtl < MIN_LOCK_TTL_MS || lockTtl > MAX_TIMER_DURATION_MS) {
    throw new InvalidSchedulerOptionError('lockTtl', options.lockTtl, `expected a duration from ${MIN_LOCK_TTL_MS} ms to 24 days`);
  }
  const shutdownTimeout =
    options.shutdownTimeout === undefined ? DEFAULT_SHUTDOWN_TIMEOUT_MS : options.shutdownTimeout === 0 ? 0 : parseDuration(options.shutdownTimeout);
  if (shutdownTimeout === undefined) {
    throw new InvalidSchedulerOptionError('shutdownTimeout', options.shutdownTimeout, 'expected a duration of 0 ms or more');
  }
  if (options.autoStart !== undefined && typeof options.autoStart !== 'boolean') {
    throw new InvalidSchedulerOptionError('autoStart', options.autoStart, 'expected true or false');
  }
  const minPeriod = options.minPeriod === undefined ? DEFAULT_MIN_PERIOD_MS : parseDuration(options.minPeriod);
  if (minPeriod === undefined || minPeriod < MIN_PERIOD_FLOOR_MS || minPeriod > MAX_PERIOD_MS) {
    throw new InvalidSchedulerOptionError('minPeriod', options.minPeriod, `expected a duration from ${MIN_PERIOD_FLOOR_MS} ms to 366 days, in ms or such as '1s'`);
  }
  const checkpoint = {
    ...DEFAULT_CHECKPOINT_OPTIONS,
    ...checkCheckpointOptions(options.checkpoint, (option, value, reason) => {
      throw new InvalidSchedulerOptionError(option, value, reason);
    }),
  };
  const snapshot = resolveSnapshotOptions(options.snapshot);
  const missedRuns = checkMissedRuns(options, DEFAULT_MISSED_RUNS, (option, value, reason) => {
    throw new InvalidSchedulerOptionError(option, value, reason);
  });
  const retry = checkRetryOptions(options.retry, (option, value, reason) => {
    throw new InvalidSchedulerOptionError(option, value, reason);
  });
  const cluster = resolveClusterOptions(options, (option, value, reason) => {
    throw new InvalidSchedulerOptionError(option, value, reason);
  });
  return {
    retry,
    redis,
    keyPrefix,
    instanceId,
    lockTtl,
    shutdownTimeout,
    autoStart: options.autoStart ?? true,
    bounds: { minPeriod, maxPeriod: MAX_PERIOD_MS },
    checkpoint,
    snapshot,
    missedRuns,
    cluster,
  };
}

/**
 * An empty string (what `REDIS_URL=` in a shell gives) or a string that is not a URL would make
 * ioredis connect to localhost:6379, or to a host named after the string, without a word; and an
 * empty string would slip past the production guard. Both fail here instead.
 */
function checkRedis(redis: unknown): RedisConnection | undefined {
  if (redis === undefined) return undefined;
  if (typeof redis === 'string') {
    if (redis.trim() === '') {
      throw new InvalidSchedulerOptionError(
        'redis',
        redis,
        "an empty string (an environment variable set to nothing, such as `REDIS_URL=`, gives one) is not a Redis address: " +
          "set a URL such as 'redis://host:6379', or leave the option undefined for the embedded coordinator",
      );
    }
    if (redis.startsWith('/')) return redis; // a Unix socket path, as ioredis reads it
    let url: URL | undefined;
    try {
      url = new URL(redis);
    } catch {
      url = undefined;
    }
    if (!url || !/^rediss?:$/.test(url.protocol) || url.hostname === '') {
      throw new InvalidSchedulerOptionError(
        'redis',
        // A password in what was meant as a URL stays out of the logs.
        redis.replace(/\/\/[^/@]*@/, '//***@'),
        "expected a URL such as 'redis://host:6379/0' or 'rediss://user:password@host:6380' (or a Unix socket path starting with '/')",
      );
    }
    return redis;
  }
  if (typeof redis === 'object' && redis !== null) return redis as RedisConnection;
  throw new InvalidSchedulerOptionError('redis', redis, 'expected a URL, ioredis options, or an ioredis client (Redis or Cluster)');
}
