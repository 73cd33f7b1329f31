import { InvalidJobOptionError, InvalidSchedulerOptionError } from '../../lib';
import { decideRetry, resolveRetry, retryDelay } from '../../lib/retry';
import { parseRetryId, retryId } from '../../lib/retry/retry-id';
import { defineJob } from '../../lib/scheduling/job-definition';
import { resolveSchedulerOptions } from '../../lib/scheduler-options.resolver';

describe('retry options', () => {
  it("reads a job's retry over the module's over the defaults, field by field", () => {
    const module = resolveSchedulerOptions({ retry: { attempts: 3, backoff: { delay: '2s', jitter: 0.5 } } }).retry;
    const job = defineJob({ name: 'n', retry: { backoff: { factor: 3, maxDelay: '1m' } } }, 'x').retry;
    expect(resolveRetry(module, job)).toEqual({ attempts: 3, delay: 2_000, factor: 3, maxDelay: 60_000, jitter: 0.5, retryIf: null });
    expect(resolveRetry({}, {})).toEqual({ attempts: 1, delay: 1_000, factor: 2, maxDelay: 3_600_000, jitter: 0, retryIf: null });
  });

  it('names the job, the option and the value of a bad retry option', () => {
    const cases: [unknown, RegExp][] = [
      [5, /option "retry" has an invalid value 5: expected an object/],
      [{ attempts: 0 }, /option "retry.attempts" has an invalid value 0: expected a whole number of attempts from 1/],
      [{ attempts: 2.5 }, /option "retry.attempts" has an invalid value 2.5/],
      [{ attempts: 101 }, /option "retry.attempts" has an invalid value 101/],
      [{ backoff: { delay: 'soon' } }, /option "retry.backoff.delay" has an invalid value 'soon': expected a duration/],
      [{ backoff: { maxDelay: '2d' } }, /option "retry.backoff.maxDelay" has an invalid value '2d': expected a duration from 1 ms to 24 hours/],
      [{ backoff: { factor: 0.5 } }, /option "retry.backoff.factor" has an invalid value 0.5: expected a number from 1/],
      [{ backoff: { jitter: 1.5 } }, /option "retry.backoff.jitter" has an invalid value 1.5: expected a fraction/],
      [{ backoff: { delay: '10s', maxDelay: '1s' } }, /option "retry.backoff.maxDelay" has an invalid value '1s': expected at least the delay/],
      [{ retryIf: 'yes' }, /option "retry.retryIf" has an invalid value 'yes': expected a function/],
    ];
    for (const [retry, message] of cases) {
      expect(() => defineJob({ name: 'n', retry: retry as never }, 'x')).toThrow(InvalidJobOptionError);
      expect(() => defineJob({ name: 'n', retry: retry as never }, 'x')).toThrow(new RegExp(`^Job "n": ${message.source}`));
      expect(() => resolveSchedulerOptions({ retry: retry as never })).toThrow(InvalidSchedulerOptionError);
    }
  });
});

describe('retry backoff', () => {
  const policy = { delay: 1_000, factor: 2, maxDelay: 5_000, jitter: 0 };

  it('waits delay * factor ^ (n - 1) after attempt n fails, at most maxDelay', () => {
    expect([1, 2, 3, 4, 5].map((n) => retryDelay(policy, n))).toEqual([1_000, 2_000, 4_000, 5_000, 5_000]);
  });

  it('takes the jitter off the wait, never adds it', () => {
    const jittered = { ...policy, jitter: 0.2 };
    expect(retryDelay(jittered, 2, () => 0)).toBe(2_000);
    expect(retryDelay(jittered, 2, () => 0.5)).toBe(1_800);
    expect(retryDelay(jittered, 2, () => 0.999999)).toBe(1_600);
    expect(retryDelay(jittered, 9, () => 0)).toBe(5_000);
  });
});

describe('decideRetry', () => {
  const policy = resolveRetry({}, { attempts: 3, delay: 100 });
  const failed = { status: 'error' as const, error: new Error('boom') };

  it('retries a thrown error or a timeout while attempts are left; never a run the library aborted, or a success', () => {
    expect(decideRetry(policy, 1, failed)).toEqual({ retry: true, delayMs: 100 });
    expect(decideRetry(policy, 2, { status: 'timeout', error: new Error('late') })).toEqual({ retry: true, delayMs: 200 });
    expect(decideRetry(policy, 3, failed)).toEqual({ retry: false, why: 'its 3 attempts are used up' });
    expect(decideRetry(policy, 1, { status: 'stopped', error: new Error('lease lost') })).toEqual({ retry: false, why: null });
    expect(decideRetry(policy, 1, { status: 'success', error: null })).toEqual({ retry: false, why: null });
    expect(decideRetry(resolveRetry({}, {}), 1, failed)).toEqual({ retry: false, why: null });
  });

  it('stops when retryIf answers false or throws', () => {
    expect(decideRetry({ ...policy, retryIf: () => false }, 1, failed)).toEqual({ retry: false, why: 'its retryIf answered false' });
    const throwing = () => {
      throw new Error('bad predicate');
    };
    expect(decideRetry({ ...policy, retryIf: throwing }, 1, failed)).toEqual({ retry: false, why: 'its retryIf threw (bad predicate), which counts as false' });
    expect(decideRetry({ ...policy, retryIf: (error) => error.message === 'boom' }, 1, failed).retry).toBe(true);
  });
});

describe('retry ids', () => {
  it("reads back what it writes, and nothing else's", () => {
    const id = { attempt: 2, scheduledAt: 1_700_000_000_000, firstFencingToken: 1_700_000_000_001, taskId: null };
    expect(parseRetryId(retryId(id))).toEqual(id);
    expect(parseRetryId(retryId({ ...id, taskId: 42 }))).toEqual({ ...id, taskId: 42 });
    expect(parseRetryId('queued')).toBeNull();
    expect(parseRetryId('retry:manual-id-of-a-user')).toBeNull();
  });
});
