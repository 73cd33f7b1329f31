import type { Logger } from '@nestjs/common';
import type { Coordinator, SlotOutcome } from '../coordination/coordinator.interface';
import { AbortCause, JobAbortedError } from '../errors';
import { retryDelay } from '../retry/retry-backoff';
import type { RunOutcome } from '../scheduling/job.runner';
import type { RunSupervisor } from '../scheduling/run-supervisor';
import { RESTART_BACKOFF, SLOT_ERROR_RETRY_MS, SLOT_RETRY_MS } from './continuous.constants';
import type { ContinuousPlacement } from './continuous.options';

/** Why this replica must not run a continuous job now (an abort cause), `waiting` before it knows the membership, or null: it must. */
export type SlotVerdict = Extract<AbortCause, 'unchosen' | 'paused' | 'shutdown' | 'lease-lost'> | 'waiting' | null;

/** What a slot needs of the replica: its runs, the coordinator, and whether it should run the job. */
export interface SlotHost {
  readonly coordinator: Coordinator;
  readonly runs: RunSupervisor;
  readonly instanceId: string;
  readonly lockTtl: number;
  readonly logger: Logger;
  verdict(name: string): SlotVerdict;
  /** The coordinator said the job is paused (its pause event may not have arrived). */
  pausedSeen(name: string): void;
  report(error: unknown, name: string): void;
}

const ABORT_DETAIL: Record<Exclude<SlotVerdict, 'waiting' | null>, string> = {
  unchosen: 'this replica is no longer among those chosen to run the continuous job',
  paused: 'the continuous job was paused',
  shutdown: 'the application is shutting down',
  'lease-lost': "this replica's cluster session lapsed (no heartbeat reached the coordinator for its session TTL), so another replica may be given its slot",
};

/**
 * One continuous job on this replica: while the replica is chosen, it holds a slot lease and a
 * run under it; when it is no longer chosen (or the job is paused, or the app stops), the run is
 * aborted through `ctx.signal` and its lease released at its end. A run that ends while the
 * replica is still chosen starts again after a backoff; a chosen replica finding every slot held
 * asks again every `SLOT_RETRY_MS` until one is released or expires.
 */
export class ContinuousSlot {
  private looping = false;
  private wake: (() => void) | null = null;
  /** Runs ended while chosen in a row: the backoff's exponent. */
  private restarts = 0;
  private waitingSince: number | null = null;

  constructor(
    readonly name: string,
    private readonly placement: ContinuousPlacement,
    private readonly host: SlotHost,
  ) {}

  /** Brings the job in line with the verdict: starts the loop if it must run, aborts its runs if not. */
  reconcile(): void {
    const verdict = this.host.verdict(this.name);
    if (verdict !== null && verdict !== 'waiting') {
      for (const run of this.host.runs.running()) {
        if (run.name === this.name) this.host.runs.abort(this.name, run.fencingToken, verdict, ABORT_DETAIL[verdict]);
      }
    } else if (verdict === null && !this.looping) {
      void this.loop();
    }
    this.wake?.();
  }

  /** Resolves once no run of the job is going here (used at shutdown, after `reconcile`). */
  async idle(): Promise<void> {
    const ends = this.host.runs
      .running()
      .filter((run) => run.name === this.name)
      .map((run) => this.host.runs.runEnd(this.name, run.fencingToken));
    await Promise.all(ends);
  }

  private async loop(): Promise<void> {
    this.looping = true;
    try {
      while (this.host.verdict(this.name) === null) {
        const run = await this.acquire();
        if (!run) continue;
        const startedAt = Date.now();
        const outcome = await run.ended;
        if (this.host.verdict(this.name) !== null) break;
        // Aborted by this loop's own verdict, which has changed back since, or for a lease lost
        // (the replica was frozen or cut off; not the handler's doing): start again at once. A
        // backoff here would leave the slot empty while this replica, still chosen, holds its place.
        const notTheHandlers = outcome?.error instanceof JobAbortedError && ['unchosen', 'paused', 'shutdown', 'lease-lost'].includes(outcome.error.kind);
        if (notTheHandlers) continue;
        // A run that lasted longer than the longest wait was healthy: the count starts over.
        if (Date.now() - startedAt > RESTART_BACKOFF.maxDelay) this.restarts = 0;
        this.restarts++;
        const delay = retryDelay(RESTART_BACKOFF, this.restarts);
        this.host.logger.warn(
          `Continuous job "${this.name}": its run (fencing token ${run.fencingToken}) ${describeEnd(outcome)} while this replica is still chosen; ` +
            `starting it again in ${delay} ms (restart ${this.restarts} in a row).`,
        );
        // Not cut short by reconcile: heartbeats call it, and the backoff must hold.
        await this.sleep(delay, false);
      }
    } finally {
      this.looping = false;
    }
  }

  /** Takes a slot and starts a run under it; null after waiting (every slot held, the coordinator away) or when the job must not run. */
  private async acquire(): Promise<{ fencingToken: number; ended: Promise<RunOutcome | null> } | null> {
    const { coordinator, instanceId, lockTtl, logger } = this.host;
    let outcome: SlotOutcome;
    try {
      outcome = await coordinator.acquireSlot(this.name, instanceId, lockTtl, this.placement.max);
    } catch (error) {
      this.host.report(error, this.name);
      await this.sleep(SLOT_ERROR_RETRY_MS);
      return null;
    }
    switch (outcome.status) {
      case 'paused':
        this.host.pausedSeen(this.name);
        return null;
      case 'no-session':
        // The coordinator has not seen this replica's heartbeat (Redis lost its state, or the
        // session lapsed there first): asked again after the next one, which wakes this wait.
        await this.sleep(SLOT_RETRY_MS);
        return null;
      case 'unknown':
        // Redis lost the job: the resync registers it again.
        await this.sleep(SLOT_ERROR_RETRY_MS);
        return null;
      case 'full': {
        if (this.waitingSince === null) {
          this.waitingSince = Date.now();
          const holders = outcome.holders.map((holder) => `"${holder.instanceId}" (token ${holder.fencingToken})`).join(', ');
          logger.log(`Continuous job "${this.name}": chosen to run here; waiting for one of its ${this.placement.max} slot(s), held by ${holders}, to be released or to expire.`);
        }
        await this.sleep(SLOT_RETRY_MS);
        return null;
      }
    }
    const { fencingToken, startedAt, expiresAt } = outcome;
    const waited = this.waitingSince === null ? '' : ` after waiting ${Date.now() - this.waitingSince} ms for a slot`;
    this.waitingSince = null;
    logger.log(`Continuous job "${this.name}": running here with fencing token ${fencingToken}${waited}.`);
    const { runs } = this.host;
    // A slot lease's run is as a task's: no schedule, its own token; renewed and released by RunSupervisor.
    runs.startRun(this.name, { fencingToken, scheduledAt: startedAt, startedAt, trigger: 'EVENT' }, outcome.status === 'acquired' ? startedAt : coordinator.clock.now(), expiresAt);
    const ended = runs.runEnd(this.name, fencingToken);
    if (!ended) {
      // The token's run started and ended here before (`held`: its release never reached the coordinator): release it now.
      await runs.release({ name: this.name, fencingToken, status: 'stopped', error: null });
      return null;
    }
    // The verdict may have changed while the slot was asked for: the run is aborted before its handler starts.
    this.reconcile();
    return { fencingToken, ended };
  }

  /** Waits `ms`, or (`wakeable`) less if `reconcile` is called meanwhile. */
  private sleep(ms: number, wakeable = true): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      const self = this;
      function done() {
        clearTimeout(timer);
        if (self.wake === done) self.wake = null;
        resolve();
      }
      if (wakeable) this.wake = done;
    });
  }
}

function describeEnd(outcome: RunOutcome | null): string {
  if (!outcome || outcome.status === 'success') return 'returned';
  if (outcome.error instanceof JobAbortedError) return `was aborted (${outcome.error.kind})`;
  return `${outcome.status === 'timeout' ? 'timed out' : 'failed'}${outcome.error ? `: ${outcome.error.message}` : ''}`;
}
