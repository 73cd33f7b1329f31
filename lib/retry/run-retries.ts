import type { OrchestratorContext } from '../scheduling/orchestrator-context';
import type { RunOutcome } from '../scheduling/job.runner';
import { decideRetry, RetryDecision } from './retry-decision';
import { resolveRetry } from './retry.options';

/**
 * The retry side of one replica's runs: decides, when a run ends, whether it is tried again (the
 * job's `retry` over the module's), and says so. The retry itself is written by the coordinator
 * with the run's release (RunSupervisor → `finish`), so it waits there, not in this process.
 */
export class RunRetries {
  constructor(private readonly ctx: OrchestratorContext) {}

  decide(name: string, attempt: number, outcome: RunOutcome): RetryDecision {
    const job = this.ctx.registry.get(name);
    if (!job) return { retry: false, why: null };
    return decideRetry(resolveRetry(this.ctx.options.retry, job.definition.retry), attempt, outcome);
  }

  /** A failed attempt that will be tried again: a warning, not an error (the run may still succeed). */
  announce(name: string, fencingToken: number, attempt: number, outcome: RunOutcome, delayMs: number): void {
    const { attempts } = resolveRetry(this.ctx.options.retry, this.ctx.registry.get(name)!.definition.retry);
    this.ctx.logger.warn(
      `Job "${name}": attempt ${attempt} of ${attempts} (fencing token ${fencingToken}) failed (${outcome.status}): ${outcome.error?.message}; ` +
        `attempt ${attempt + 1} starts in ${delayMs} ms, on whichever replica claims it.`,
    );
  }

  /** The retry could not be written with the release (the lease was lost, or Redis was away): the run ends failed. */
  lost(name: string, attempt: number, outcome: RunOutcome): void {
    const error = outcome.error ?? new Error(`the run ended ${outcome.status}`);
    // A timeout is a warning, as for a run without retries (RunSupervisor).
    if (outcome.status === 'timeout') return this.ctx.logger.warn(`Job "${name}": its retry could not be written (attempt ${attempt}): ${error.message}`);
    this.ctx.logger.error(`Job "${name}" failed (attempt ${attempt}; its retry could not be written, its lease was gone or Redis unreachable): ${error.message}`, error.stack);
    this.ctx.report('run', error, name);
  }
}
