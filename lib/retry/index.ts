export type { RetryBackoff, RetryOptions, ResolvedRetryOptions } from './retry.interface';
export { checkRetryOptions, resolveRetry, DEFAULT_RETRY_OPTIONS } from './retry.options';
export { retryDelay } from './retry-backoff';
export { decideRetry, RetryDecision } from './retry-decision';
export { parseRetryId, retryId, RetryId } from './retry-id';
