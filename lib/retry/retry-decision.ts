import type { RunOutcome } from '../scheduling/job.runner';
import { retryDelay } from './retry-backoff';
import type { ResolvedRetryOptions } from './retry.interface';

/** Whether a run that ended is tried again, and after how long; or why not (for the log). */
export type RetryDecision = { retry: true; delayMs: number } | { retry: false; why: string | null };

/**
 * After attempt `attempt` (1-based) ended with `outcome`. Only a handler's own failure is retried:
 * it threw, or ran past its `timeout`. A run the library aborted (lease lost, replaced, stopped,
 * shut down) is not: another run took its place, or a caller or the app ended it on purpose.
 */
export function decideRetry(policy: ResolvedRetryOptions, attempt: number, outcome: RunOutcome, random?: () => number): RetryDecision {
  if (outcome.status !== 'error' && outcome.status !== 'timeout') return { retry: false, why: null };
  if (policy.attempts <= 1) return { retry: false, why: null };
  if (attempt >= policy.attempts) return { retry: false, why: `its ${policy.attempts} attempts are used up` };
  if (policy.retryIf) {
    let again: unknown;
    try {
      again = policy.retryIf(outcome.error!);
    } catch (error) {
      return { retry: false, why: `its retryIf threw (${(error as Error)?.message ?? String(error)}), which counts as false` };
    }
    if (again !== true) return { retry: false, why: 'its retryIf answered false' };
  }
  return { retry: true, delayMs: retryDelay(policy, attempt, random) };
}
