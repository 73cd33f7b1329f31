import { parseDuration } from '../scheduling/duration';
import {
  DEFAULT_RETRY_ATTEMPTS,
  DEFAULT_RETRY_DELAY_MS,
  DEFAULT_RETRY_FACTOR,
  DEFAULT_RETRY_JITTER,
  DEFAULT_RETRY_MAX_DELAY_MS,
  MAX_RETRY_ATTEMPTS,
  MAX_RETRY_DELAY_MS,
  MAX_RETRY_FACTOR,
} from './retry.constants';
import type { ResolvedRetryOptions, RetryOptions } from './retry.interface';

/** Throws the caller's error naming the option (`retry.backoff.delay`) and its value. */
type Fail = (option: string, value: unknown, reason: string) => never;

export const DEFAULT_RETRY_OPTIONS: ResolvedRetryOptions = {
  attempts: DEFAULT_RETRY_ATTEMPTS,
  delay: DEFAULT_RETRY_DELAY_MS,
  factor: DEFAULT_RETRY_FACTOR,
  maxDelay: DEFAULT_RETRY_MAX_DELAY_MS,
  jitter: DEFAULT_RETRY_JITTER,
  retryIf: null,
};

const isObject = (value: unknown): boolean => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Validates `retry` options (the module's, or a job's): returns the fields given, each checked.
 * A job's fill in over the module's, which fill in over the defaults (`resolveRetry`).
 */
export function checkRetryOptions(options: RetryOptions | undefined, fail: Fail): Partial<ResolvedRetryOptions> {
  if (options === undefined) return {};
  if (!isObject(options)) fail('retry', options, "expected an object such as { attempts: 3, backoff: { delay: '1s', factor: 2 } }");
  const checked: Partial<ResolvedRetryOptions> = {};
  const { attempts, backoff, retryIf } = options;
  if (attempts !== undefined) {
    if (!Number.isInteger(attempts) || attempts < 1 || attempts > MAX_RETRY_ATTEMPTS) {
      fail('retry.attempts', attempts, `expected a whole number of attempts from 1 (no retry) to ${MAX_RETRY_ATTEMPTS}`);
    }
    checked.attempts = attempts;
  }
  if (retryIf !== undefined) {
    if (typeof retryIf !== 'function') fail('retry.retryIf', retryIf, 'expected a function (error) => boolean');
    checked.retryIf = retryIf;
  }
  if (backoff === undefined) return checked;
  if (!isObject(backoff)) fail('retry.backoff', backoff, "expected an object such as { delay: '1s', factor: 2, maxDelay: '1m', jitter: 0.1 }");
  const duration = (option: 'delay' | 'maxDelay', value: number | string) => {
    const ms = parseDuration(value);
    if (ms === undefined || ms > MAX_RETRY_DELAY_MS) return fail(`retry.backoff.${option}`, value, "expected a duration from 1 ms to 24 hours, in ms or such as '5s'");
    return ms;
  };
  if (backoff.delay !== undefined) checked.delay = duration('delay', backoff.delay);
  if (backoff.maxDelay !== undefined) checked.maxDelay = duration('maxDelay', backoff.maxDelay);
  if (backoff.factor !== undefined) {
    if (typeof backoff.factor !== 'number' || !(backoff.factor >= 1 && backoff.factor <= MAX_RETRY_FACTOR)) {
      fail('retry.backoff.factor', backoff.factor, `expected a number from 1 (a constant wait) to ${MAX_RETRY_FACTOR}`);
    }
    checked.factor = backoff.factor;
  }
  if (backoff.jitter !== undefined) {
    if (typeof backoff.jitter !== 'number' || !(backoff.jitter >= 0 && backoff.jitter <= 1)) {
      fail('retry.backoff.jitter', backoff.jitter, 'expected a fraction of the wait between 0 and 1');
    }
    checked.jitter = backoff.jitter;
  }
  if (checked.delay !== undefined && checked.maxDelay !== undefined && checked.maxDelay < checked.delay) {
    fail('retry.backoff.maxDelay', backoff.maxDelay, `expected at least the delay (${String(backoff.delay)})`);
  }
  return checked;
}

/** A job's retry policy: its own fields over the module's, over the defaults. */
export function resolveRetry(module: Partial<ResolvedRetryOptions>, job: Partial<ResolvedRetryOptions>): ResolvedRetryOptions {
  return { ...DEFAULT_RETRY_OPTIONS, ...module, ...job };
}
