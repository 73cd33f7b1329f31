import type { CorruptKey, OwnLease, RunReport } from '../coordination/coordinator.interface';
import { AbortCause, JobAbortedError } from '../errors';
import { CheckpointClaim, RunCheckpoints } from '../checkpoint/run-checkpoints';
import type { CoordinatorClock } from './coordinator-clock';
import type { JobContext } from './job-context.interface';
import type { JobMirror } from './job-mirror';
import { executeJob, RunOutcome } from './job.runner';
import { LeaseDiagnosis } from './lease-diagnosis';
import { LeaseTimer } from './lease-timer';
import { unrecorded } from './no-run-records';
import { iso, OrchestratorContext, SHUTDOWN_RELEASE_MS, withDeadline } from './orchestrator-context';
import { CancelReason, PendingCancels } from './pending-cancels';
import { RecordsLateError, type RunRecorder, type RunStart } from './run-recorder';
import { TickBatcher } from './tick-batcher';
import { RunRetries } from '../retry/run-retries';

/** How many recent fencing tokens a replica remembers to never start one run twice. */
const MAX_REMEMBERED_TOKENS = 10_000;

/** What starting a run needs to know of its claim (or adopted lease, or task lease). */
export type RunClaim = Pick<OwnLease, 'fencingToken' | 'scheduledAt' | 'startedAt' | 'trigger' | 'taskId' | 'catchUp' | 'attempt' | 'firstFencingToken'> &
  CheckpointClaim;

interface ActiveRun {
  name: string;
  fencingToken: number;
  /** Which attempt of its run (1-based). */
  attempt: number;
  /** For a task's run: the task (counted against `worker.concurrency`). */
  taskId?: number;
  controller: AbortController;
  /** Set when the lease is gone (expired and taken, or cancelled): nothing is left to release. */
  leaseLost: boolean;
  /** Set once the handler returned (or threw): a lease lost after that does not abort the run. */
  settled?: boolean;
  /** Gives the lease up (aborts the run) before it can expire unrenewed. */
  lease: LeaseTimer;
  done: Promise<void>;
  /** How it ended, once it has (set before `done` resolves). */
  outcome?: RunOutcome;
  /** Aborted at shutdown to be handed back: its next attempt is due at once, elsewhere. */
  handedBack?: boolean;
}

/**
 * The runs of one replica and their leases: starts each run once (by fencing token), renews
 * the leases of all runs together every `lockTtl / 3`, aborts a run whose lease is lost,
 * cancelled or about to expire, and releases each lease when its run ends (the reports of one
 * event-loop turn in one call; kept and sent again if the coordinator is away).
 */
export class RunSupervisor {
  private readonly runs = new Map<string, ActiveRun>();
  private readonly unreported: RunReport[] = [];
  private readonly finishes: TickBatcher<RunReport, boolean | CorruptKey>;
  private readonly leaseDiagnosis: LeaseDiagnosis;
  private readonly checkpoints: RunCheckpoints;
  private extendTimer?: NodeJS.Timeout;
  /** Fencing tokens of runs started here lately, so that a run adopted and claimed is not started twice. */
  private readonly startedTokens = new Set<string>();
  /** Cancels that overtook the claim reply of the run they name: applied when it starts. */
  private readonly pendingCancels = new PendingCancels();
  /** Whether and when a failed run is tried again. */
  private readonly retries: RunRetries;

  constructor(
    private readonly ctx: OrchestratorContext,
    private readonly recorder: RunRecorder,
    private readonly mirror: JobMirror,
    /** A run of the job ended here (FireClaims claims a fire that waited for it). */
    private readonly ended: (name: string) => void = () => undefined,
  ) {
    this.finishes = new TickBatcher((reports) => ctx.coordinator.finish(reports));
    this.leaseDiagnosis = new LeaseDiagnosis(2 * ctx.options.lockTtl, Math.floor(ctx.options.lockTtl / 3));
    this.checkpoints = new RunCheckpoints(ctx.coordinator, ctx.logger, ctx.options.checkpoint);
    this.retries = new RunRetries(ctx);
  }

  /** The coordinator's clock as this replica knows it: every lease expires on it. */
  private get clock(): CoordinatorClock {
    return this.ctx.coordinator.clock;
  }

  /** Runs that this replica has started and not yet ended. */
  running(): { name: string; fencingToken: number }[] {
    return [...this.runs.values()].map(({ name, fencingToken }) => ({ name, fencingToken }));
  }

  /** How many tasks this replica runs now (its `worker.concurrency` bounds them). */
  tasksRunning(): number {
    let count = 0;
    for (const run of this.runs.values()) if (run.taskId !== undefined) count++;
    return count;
  }

  /** A live lease of this replica that it has no run for: its claim's reply was lost. Run it now. */
  adopt(lease: OwnLease): void {
    const key = runKey(lease.name, lease.fencingToken);
    if (this.runs.has(key) || this.startedTokens.has(key) || this.ctx.life.closed) return;
    // A continuous job's slot lease is its ContinuousSlot's: it asks for it again and gets it back (`held`).
    if (this.ctx.registry.get(lease.name)?.definition.continuous) return;
    this.ctx.logger.warn(
      lease.taskId === undefined
        ? `Job "${lease.name}": running the fire due at ${iso(lease.scheduledAt)}, claimed by this replica although the claim's reply was lost (timed out or the connection dropped).`
        : `Job "${lease.name}": running task ${lease.taskId}, dispatched to this replica although the lease's reply was lost (timed out or the connection dropped).`,
    );
    // Its deadline is its real expiry, which may be close: renewed at once, given up if it cannot be.
    this.startRun(lease.name, lease, this.clock.now(), lease.expiresAt);
    void this.extendLeases();
  }

  /** `leaseKnownAt` and `leaseExpiresAt` (coordinator's clock): how long the run's lease is valid without renewal. */
  startRun(name: string, claim: RunClaim, leaseKnownAt: number, leaseExpiresAt: number): void {
    const key = runKey(name, claim.fencingToken);
    if (this.runs.has(key) || this.startedTokens.has(key)) return;
    this.startedTokens.add(key);
    if (this.startedTokens.size > MAX_REMEMBERED_TOKENS) this.startedTokens.delete(this.startedTokens.values().next().value!);
    const controller = new AbortController();
    // Cut off from Redis, a replica cannot tell whether its lease still holds: once it may have
    // expired, another replica may run the job, so this run must stop.
    const lease = new LeaseTimer(this.clock, () => this.abortRun(run, 'lease-lost', `its lock could not be renewed before it expired: ${this.leaseDiagnosis.explain()}`));
    const run: ActiveRun = { name, fencingToken: claim.fencingToken, attempt: claim.attempt ?? 1, taskId: claim.taskId, controller, leaseLost: false, lease, done: Promise.resolve() };
    lease.renew(leaseKnownAt, leaseExpiresAt);
    this.runs.set(key, run);
    this.extendLeasesWhileRunning();
    // Revoked before this replica heard it had won: aborted before its handler runs.
    const cancelled = this.pendingCancels.take(key);
    if (cancelled) this.cancelRun(run, cancelled);
    else this.abortIfLeaseExpired(run, 'its claim was answered');
    run.done = this.execute(run, claim);
  }

  /**
   * A run whose lease is already past its give-up time must not start its handler: another
   * replica may hold the job by now (a claim reply read late, after this process was stopped).
   */
  private abortIfLeaseExpired(run: ActiveRun, when: string): boolean {
    if (run.controller.signal.aborted) return false;
    if (!run.lease.expired()) return false;
    this.abortRun(run, 'lease-lost', `its lock had expired by the time ${when}, so its handler does not start: ${this.leaseDiagnosis.explain()}`);
    return true;
  }

  /** How a run started here ends (its lease released, if it still held it); null if none with that token is going. */
  runEnd(name: string, fencingToken: number): Promise<RunOutcome> | null {
    const run = this.runs.get(runKey(name, fencingToken));
    return run ? run.done.then(() => run.outcome!) : null;
  }

  /** Aborts a run started here through its `ctx.signal` (a continuous job's replica no longer chosen); its lease is released at its end. */
  abort(name: string, fencingToken: number, cause: AbortCause, detail: string): void {
    const run = this.runs.get(runKey(name, fencingToken));
    if (run) this.abortRun(run, cause, detail);
  }

  /** A `cancel` event: aborts the run, or keeps the cancel if its claim reply has not arrived yet. */
  cancel(name: string, fencingToken: number, reason: CancelReason): void {
    const key = runKey(name, fencingToken);
    const run = this.runs.get(key);
    // A cancel can overtake the claim reply of its run (another connection): kept until it arrives.
    if (!run && !this.startedTokens.has(key)) this.pendingCancels.add(key, reason);
    else if (run) this.cancelRun(run, reason);
  }

  private async execute(run: ActiveRun, claim: RunClaim): Promise<void> {
    const job = this.ctx.registry.get(run.name)!;
    const scheduledAt = new Date(claim.scheduledAt);
    // On the clock of scheduledAt (Redis's), and never before the claim that started it.
    const startedAt = new Date(Math.max(this.clock.now(), claim.startedAt));
    const { instanceId } = this.ctx.options;
    const catchUp = claim.catchUp === true;
    const retry = run.attempt > 1 ? { attempt: run.attempt, firstFencingToken: claim.firstFencingToken } : {};
    const start: RunStart = { job, trigger: claim.trigger, scheduledAt, startedAt, fencingToken: claim.fencingToken, instanceId, taskId: claim.taskId, catchUp, ...retry };
    const record = await this.recorder.start(start).catch((error) => {
      // A task whose records are late fails this attempt (retried as its job says).
      if (error instanceof RecordsLateError) return error;
      // The recorder handles the database's failures itself; this is a bug in it, and must not stop the job.
      this.ctx.report('record', error, run.name);
      return unrecorded(start);
    });
    if (record instanceof RecordsLateError) return this.endRun(run, { status: 'error', error: record });
    if (!record) {
      // The records say this run must not happen (already recorded, stopped, or superseded).
      return this.endRun(run, { status: 'stopped', error: new JobAbortedError(run.name, 'stopped', 'its records refused it') }, false);
    }
    // Each flush the coordinator takes is also recorded on the run's task (nothing without records).
    const checkpoint = await this.checkpoints
      .open(run.name, claim, job.definition.checkpoint, (state, savedAt) => record.checkpointSaved(state, savedAt))
      .catch((error: Error) => error);
    if (checkpoint instanceof Error) {
      await record.finish({ status: 'error', error: checkpoint });
      return this.endRun(run, { status: 'error', error: checkpoint });
    }
    const context: JobContext = {
      name: run.name,
      scheduledAt,
      startedAt,
      trigger: record.trigger,
      catchUp,
      attempt: run.attempt,
      signal: run.controller.signal,
      fencingToken: claim.fencingToken,
      instanceId,
      logger: record.logger,
      executionId: record.executionId,
      taskId: record.taskId,
      parameters: record.parameters,
      checkIn: (data) => record.checkIn(data),
      lastCheckpoint: checkpoint.last,
      checkpoint: (state) => checkpoint.save(state),
    };
    if (run.controller.signal.aborted) {
      // Stopped, replaced or shut down while its records were being written: the handler never runs.
      const reason = run.controller.signal.reason as JobAbortedError;
      const outcome: RunOutcome = { status: reason.kind === 'timeout' ? 'timeout' : 'stopped', error: reason };
      await record.finish(recordedOutcome(run, outcome));
      return this.endRun(run, outcome, false);
    }
    // The records and the checkpoint were read meanwhile: a pause of the process may have outlived the lease.
    if (this.abortIfLeaseExpired(run, 'its records were written')) {
      const outcome: RunOutcome = { status: 'stopped', error: run.controller.signal.reason as JobAbortedError };
      await record.finish(recordedOutcome(run, outcome));
      return this.endRun(run, outcome, false);
    }
    const outcome = await executeJob(job, context, run.controller);
    run.settled = true;
    // Before the run's end reaches the coordinator, so the next run starts from it (shutdown included).
    await checkpoint.close();
    // The records first: a stop that finds the lease gone must find the run's end recorded too.
    await record.finish(recordedOutcome(run, outcome));
    await this.endRun(run, outcome);
  }

  /** Ends a run: reports its failure (if its handler ran) and releases its lease. */
  private async endRun(run: ActiveRun, outcome: RunOutcome, handlerRan = true): Promise<void> {
    run.outcome = outcome;
    this.runs.delete(runKey(run.name, run.fencingToken));
    run.lease.clear();
    if (this.runs.size === 0) {
      clearInterval(this.extendTimer);
      this.extendTimer = undefined;
    }
    const retry = handlerRan && !run.leaseLost ? this.retries.decide(run.name, run.attempt, outcome) : ({ retry: false, why: null } as const);
    if (run.handedBack && outcome.status === 'stopped' && !run.leaseLost) {
      // Handed back at shutdown: it did not fail, so whatever `retry` says, its next attempt is
      // written with its release, due now, and another replica takes it (drain logs it).
      const released = await this.release({ name: run.name, fencingToken: run.fencingToken, status: outcome.status, error: null, retryDelay: 0 });
      if (!released) this.ctx.logger.warn(`Job "${run.name}": the run with fencing token ${run.fencingToken} could not be handed back (Redis did not take its release): it is recovered when its lease expires.`);
      this.ended(run.name);
      return;
    }
    if (retry.retry) {
      // Not a failure of the job yet: reported (errors$, error log) only once no attempt is left.
      this.retries.announce(run.name, run.fencingToken, run.attempt, outcome, retry.delayMs);
    } else if (handlerRan && outcome.status === 'error') {
      const tried = run.attempt > 1 || retry.why ? ` (attempt ${run.attempt}${retry.why ? `; ${retry.why}` : ''})` : '';
      this.ctx.logger.error(`Job "${run.name}" failed${tried}: ${outcome.error!.message}`, outcome.error!.stack);
      this.ctx.report('run', outcome.error, run.name);
    } else if (handlerRan && outcome.status === 'timeout') {
      this.ctx.logger.warn(outcome.error!.message);
    }
    if (!run.leaseLost) {
      const report: RunReport = { name: run.name, fencingToken: run.fencingToken, status: outcome.status, error: outcome.error?.message ?? null };
      if (retry.retry) report.retryDelay = retry.delayMs;
      const released = await this.release(report);
      // The retry was written with the release, or not at all: then this attempt was the last.
      if (retry.retry && !released) this.retries.lost(run.name, run.attempt, outcome);
    }
    this.ended(run.name);
  }

  /**
   * Releases a lease: its run ended, or it was won after shutdown and is handed back. True if the
   * coordinator released it now (and so wrote the report's retry, if any).
   */
  async release(report: RunReport): Promise<boolean> {
    try {
      const released = await this.leaseDiagnosis.timed(() => this.finishes.add(report));
      if (released === false) {
        this.ctx.logger.warn(
          `Job "${report.name}": the run with fencing token ${report.fencingToken} ended (${report.status}), but its lease had expired ` +
            `before that reached Redis: ${this.leaseDiagnosis.explain()}.`,
        );
      } else if (released !== true) this.mirror.isolate(released);
      return released === true;
    } catch (error) {
      // Kept and sent again after the coordinator returns; until then the lease expires by itself.
      // Its retry goes without it: sent late, it could run after the lease was taken by another run.
      this.unreported.push({ ...report, retryDelay: undefined });
      this.ctx.report('finish', error, report.name);
      return false;
    }
  }

  /** Sends again the ends of runs that could not be reported while the coordinator was away. */
  async flushUnreported(): Promise<void> {
    await Promise.all(this.unreported.splice(0).map(async (report) => void (await this.release(report))));
  }

  private extendLeasesWhileRunning(): void {
    if (this.extendTimer) return;
    this.extendTimer = setInterval(() => void this.extendLeases(), Math.floor(this.ctx.options.lockTtl / 3));
    this.extendTimer.unref();
    this.leaseDiagnosis.watch();
  }

  private async extendLeases(): Promise<void> {
    // A run whose lease could not be renewed in time was aborted by its own timer (LeaseTimer).
    this.leaseDiagnosis.tick();
    const held = [...this.runs.values()].filter((run) => !run.leaseLost);
    if (held.length === 0) return;
    const { lockTtl } = this.ctx.options;
    // Redis extends each lease to its clock at the script + lockTtl: no earlier than from now.
    const sentAt = this.clock.now();
    try {
      const kept = await this.leaseDiagnosis.timed(() => this.ctx.coordinator.extend(held, lockTtl));
      kept.forEach((ok, index) => {
        if (ok === true) held[index].lease.renew(sentAt, sentAt + lockTtl);
        else if (ok === false) {
          this.abortRun(held[index], 'lease-lost', `its lock expired and may be held by another run now: ${this.leaseDiagnosis.explain()}`);
        } else {
          this.abortRun(held[index], 'lease-lost', `its lease could not be renewed: key "${ok.key}" holds data the scheduler did not write`);
          this.mirror.isolate(ok);
        }
      });
    } catch (error) {
      this.ctx.report('extend', error);
    }
  }

  private cancelRun(run: ActiveRun, reason: CancelReason): void {
    if (reason === 'stopped') this.abortRun(run, 'stopped', 'it was stopped');
    else this.abortRun(run, 'cancelled', "a newer fire replaced it (overlap: 'cancel-previous')");
  }

  private abortRun(run: ActiveRun, cause: AbortCause, detail: string): void {
    if (run.controller.signal.aborted) return;
    // A run whose handler already returned is not aborted: a lease lost meanwhile (an extend
    // answered late) is reported when its end fails to reach Redis, as what it is.
    if (run.settled || !this.runs.has(runKey(run.name, run.fencingToken))) {
      // A stop or a replacement revoked its lease: nothing is left to release.
      if (cause === 'cancelled' || cause === 'stopped') run.leaseLost = true;
      return;
    }
    // Cancelled and stopped runs had their lease revoked by whoever aborted them.
    if (cause === 'cancelled' || cause === 'stopped' || cause === 'lease-lost') run.leaseLost = true;
    if (cause !== 'shutdown') this.ctx.logger.warn(`Job "${run.name}" (fencing token ${run.fencingToken}) is aborted: ${detail}.`);
    run.controller.abort(new JobAbortedError(run.name, cause, detail));
  }

  /**
   * At shutdown: waits until `deadline` for the runs going on, then aborts the ones still going
   * so their leases are released before the app closes; then stops renewing leases.
   */
  async drain(deadline: number): Promise<void> {
    const active = [...this.runs.values()];
    if (active.length > 0) {
      this.ctx.logger.log(
        `Shutting down: waiting up to ${inSeconds(deadline - Date.now())} for ${active.length} running job(s) to finish ` +
          `(${active.map((run) => run.name).join(', ')}); the ones still running then are aborted.`,
      );
      const finished = Promise.all(active.map((run) => run.done));
      if (!(await withDeadline(finished, deadline))) {
        const handedBack = [...this.runs.values()];
        for (const run of handedBack) {
          // A continuous job's slot is not handed back: its replicas are chosen again without this one.
          run.handedBack = !this.ctx.registry.get(run.name)?.definition.continuous;
          this.abortRun(run, 'shutdown', 'the application is shutting down');
        }
        const released = await withDeadline(Promise.all(handedBack.map((run) => run.done)), Date.now() + SHUTDOWN_RELEASE_MS);
        this.ctx.logger.warn(
          `Shutting down: handed back ${handedBack.length} run(s) still going after ${inSeconds(this.ctx.options.shutdownTimeout)} ` +
            `(${handedBack.map((run) => `"${run.name}" token ${run.fencingToken}`).join(', ')}): aborted through ctx.signal, ` +
            (released
              ? 'their leases released with their next attempt due now: other replicas resume them and serve their jobs now.'
              : `their leases not all released within ${inSeconds(SHUTDOWN_RELEASE_MS)}: those are recovered when they expire (lockTtl).`),
        );
      }
    }
    clearInterval(this.extendTimer);
    this.leaseDiagnosis.unwatch();
  }
}

/**
 * What the records keep of a run's end. A run handed back at shutdown is not stopped for good:
 * its attempt ends as a failed one (as between two retries), so its task takes its next attempt
 * on another replica; `Stopped` is final, and the records would refuse that attempt.
 */
function recordedOutcome(run: ActiveRun, outcome: RunOutcome): RunOutcome {
  if (!run.handedBack || outcome.status !== 'stopped') return outcome;
  return { status: 'error', error: new Error('handed back at shutdown: its next attempt runs on another replica') };
}

function runKey(name: string, fencingToken: number): string {
  return `${name}#${fencingToken}`;
}

/** A wait in the words of a log line: `10 s`, `2.5 s`, `0 s`. */
function inSeconds(ms: number): string {
  return `${+(Math.max(0, ms) / 1000).toFixed(1)} s`;
}
