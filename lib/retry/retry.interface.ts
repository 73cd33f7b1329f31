/** How long to wait before each new attempt of a failed run. */
export interface RetryBackoff {
  /**
   * The wait before the second attempt (ms or a duration string such as `'5s'`).
   * @default 1000
   */
  delay?: number | string;
  /**
   * Each further wait is this many times the previous one (1: a constant wait). At least 1.
   * @default 2
   */
  factor?: number;
  /**
   * No wait is longer than this (ms or a duration string), whatever the factor.
   * @default '1h'
   */
  maxDelay?: number | string;
  /**
   * A random part of each wait, as a fraction (0..1) of it, taken off the wait: with `0.2`, a
   * wait of 10 s becomes between 8 and 10 s. Taken off rather than added, so `maxDelay` stays a
   * true upper bound. Spreads the retries of runs that failed together.
   * @default 0
   */
  jitter?: number;
}

/**
 * Retries of a run whose handler threw (or ran past its `timeout`). Each attempt is a new claim
 * in the coordinator, with a new fencing token, serving the same due time (`ctx.scheduledAt`);
 * `ctx.attempt` numbers them from 1. A run aborted by the library (lease lost, replaced by
 * `cancel-previous`, stopped, shutdown) is not retried.
 */
export interface RetryOptions {
  /**
   * How many attempts in all, the first included: 1 means no retry. From 1 to 100.
   * @default 1
   */
  attempts?: number;
  /** The waits between attempts; fields left out take the module's, then the defaults. */
  backoff?: RetryBackoff;
  /**
   * Decides, from the error of a failed attempt, whether to try again: false stops the retries
   * (the run ends failed). A `retryIf` that throws counts as false.
   * @default every error is retried
   */
  retryIf?: (error: Error) => boolean;
}

/** Retry options with every default applied. */
export interface ResolvedRetryOptions {
  attempts: number;
  delay: number;
  factor: number;
  maxDelay: number;
  jitter: number;
  retryIf: ((error: Error) => boolean) | null;
}
