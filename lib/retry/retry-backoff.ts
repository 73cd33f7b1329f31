import type { ResolvedRetryOptions } from './retry.interface';

/**
 * The wait before attempt `failed + 1`, once attempt `failed` (1-based) has failed:
 *
 *   base = min(maxDelay, delay * factor ^ (failed - 1))
 *   wait = round(base - random() * jitter * base)        (random() in [0, 1))
 *
 * The jitter is taken off, never added, so `maxDelay` bounds every wait and the wait is never
 * below `(1 - jitter) * base`.
 */
export function retryDelay(policy: Pick<ResolvedRetryOptions, 'delay' | 'factor' | 'maxDelay' | 'jitter'>, failed: number, random: () => number = Math.random): number {
  const base = Math.min(policy.maxDelay, policy.delay * policy.factor ** (failed - 1));
  return Math.max(1, Math.round(base - random() * policy.jitter * base));
}
