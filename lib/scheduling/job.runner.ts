import { Logger } from '@nestjs/common';
import { JobAbortedError } from '../errors';
import type { RunStatus } from '../coordination/coordinator.interface';
import type { JobContext } from './job-context.interface';
import type { LocalJob } from './job.registry';

/** A handler still running this long after its abort is reported as ignoring its signal. */
const IGNORED_SIGNAL_WARNING_MS = 1_000;

export interface RunOutcome {
  // `abandoned` is the coordinator's word for a run whose replica died: no handler ends that way.
  status: Exclude<RunStatus, 'running' | 'abandoned'>;
  error: Error | null;
}

/**
 * Calls a handler and settles as soon as it returns, throws, or its signal aborts (timeout,
 * cancellation, lost lock, shutdown). A handler that ignores its signal cannot hold the run
 * open: the run ends at the abort, and a warning says when the handler finally returned.
 */
export async function executeJob(job: LocalJob, context: JobContext, controller: AbortController): Promise<RunOutcome> {
  const { name, timeout } = job.definition;
  const { signal } = context;
  const timer =
    timeout === null
      ? undefined
      : setTimeout(() => controller.abort(new JobAbortedError(name, 'timeout', `it ran past its timeout of ${timeout} ms`)), timeout);
  const aborted = new Promise<never>((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
  const handling = Promise.resolve().then(() => job.handler(context));
  try {
    await Promise.race([handling, aborted]);
    return { status: 'success', error: null };
  } catch (error) {
    if (signal.aborted) {
      const reason = signal.reason as JobAbortedError;
      const abortedAt = Date.now();
      void handling
        .catch(() => undefined)
        .then(() => {
          const late = Date.now() - abortedAt;
          if (late > IGNORED_SIGNAL_WARNING_MS) {
            new Logger(name).warn(`The handler returned ${late} ms after its run was aborted (${reason.kind}); it should honour ctx.signal.`);
          }
        });
      return { status: reason?.kind === 'timeout' ? 'timeout' : 'stopped', error: reason };
    }
    return { status: 'error', error: error instanceof Error ? error : new Error(String(error)) };
  } finally {
    clearTimeout(timer);
    aborted.catch(() => undefined);
  }
}
