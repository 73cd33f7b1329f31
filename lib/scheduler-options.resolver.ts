import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { EmbeddedInProductionError, InvalidSchedulerOptionError } from './errors';
import { DEFAULT_KEY_PREFIX, DEFAULT_LOCK_TTL_MS, DEFAULT_SHUTDOWN_TIMEOUT_MS } from './scheduler.constants';
import type { RedisConnection, SchedulerModuleOptions } from './scheduler-options.interface';
import { MAX_TIMER_DURATION_MS, parseDuration } from './scheduling/duration';

/** The module's options with every default applied, in one place. */
export interface ResolvedSchedulerOptions {
  redis: RedisConnection | undefined;
  keyPrefix: string;
  instanceId: string;
  lockTtl: number;
  shutdownTimeout: number;
  autoStart: boolean;
}

/** Below this, extending the lease every third of it would flood Redis. */
const MIN_LOCK_TTL_MS = 500;

export function resolveSchedulerOptions(
  options: SchedulerModuleOptions,
  env: NodeJS.ProcessEnv = process.env,
): ResolvedSchedulerOptions {
  if (options.redis === undefined && env.NODE_ENV === 'production' && options.allowEmbedded !== true) {
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
  return {
    redis: options.redis,
    keyPrefix,
    instanceId,
    lockTtl,
    shutdownTimeout,
    autoStart: options.autoStart ?? true,
  };
}
