import { randomUUID } from 'node:crypto';
import type { TriggerOutcome } from '../coordination/coordinator.interface';
import type { JobMirror } from './job-mirror';
import { CLAIM_RETRY_MS, CLOCK_MARGIN_MS, iso, MAX_TIMER_MS, OrchestratorContext } from './orchestrator-context';

/** Replicas that start within this long of each other share one `runOnStart` run. */
const START_RUN_WINDOW_MS = 60_000;
/**
 * Replicas request a one-shot (`at`) run at its time, each by its own clock; requests within
 * this long of the first share its run, so clock skew up to it cannot run a one-shot twice.
 */
const ONE_SHOT_WINDOW_MS = 10 * 60_000;

/**
 * The requests a replica makes of its own once it has synchronized: each job's start run
 * (`runOnStart`, at once or after its delay) and one-shot run (`at`, at its time). Each is a
 * trigger under an id shared by the replicas, so the cluster runs it once, and a request that
 * fails is tried again for a while.
 */
export class BootTriggers {
  /** Timers of delayed `runOnStart` requests and of one-shot (`at`) requests. */
  private readonly timers = new Set<NodeJS.Timeout>();
  private sent = false;

  constructor(
    private readonly ctx: OrchestratorContext,
    private readonly mirror: JobMirror,
    /** Settles once the syncs queued so far have ended (MirrorSync). */
    private readonly synced: () => Promise<void>,
    /** Asks for a full resync (MirrorSync). */
    private readonly resync: () => void,
  ) {}

  /** True once the requests were sent (by the first full sync). */
  get wereSent(): boolean {
    return this.sent;
  }

  async send(): Promise<void> {
    this.sent = true;
    for (const { definition } of this.ctx.registry.all()) {
      const { name, runOnStart, startDelay, at } = definition;
      // Replicas requesting it within the window share one start run; a retry of this request
      // is the same request (its id), so one that timed out but ran is not run again.
      const requestId = randomUUID();
      const requestStartRun = async () =>
        this.logSkippedStartRun(name, this.registeredOutcome(name, await this.ctx.coordinator.requestTrigger(name, 'EVENT', 'start', START_RUN_WINDOW_MS, requestId)));
      if (runOnStart && startDelay === 0) {
        // One failed request must not lose the start runs of the jobs after it: retried apart.
        await requestStartRun().catch((error) => {
          this.ctx.report('sync', error, name);
          this.after(CLAIM_RETRY_MS, name, requestStartRun, START_RUN_WINDOW_MS / 2);
        });
      } else if (runOnStart) this.after(this.ctx.life.startedAt + startDelay - Date.now(), name, requestStartRun, START_RUN_WINDOW_MS / 2);
      if (at !== null) this.scheduleOneShot(name, at);
    }
  }

  /** At shutdown: no more requests. */
  stop(): void {
    this.timers.forEach((timer) => clearTimeout(timer));
    this.timers.clear();
  }

  private logSkippedStartRun(name: string, outcome: TriggerOutcome): void {
    if (outcome.status !== 'skipped') return;
    this.ctx.logger.warn(
      `Job "${name}": the start run (runOnStart) was skipped: ` +
        (outcome.reason === 'running' ? `a run is still going on instance "${outcome.holder}" (overlap: 'skip').` : `the job is locked by "${outcome.holder}".`),
    );
  }

  /**
   * A one-shot run (`at`): every replica up at its time requests it, by the coordinator's clock,
   * under one id, so it runs once across the cluster. A time already past is not run: a replica
   * restarted after it must not run it again, nor fail to start.
   */
  private scheduleOneShot(name: string, at: number): void {
    const clock = this.ctx.coordinator.clock;
    if (at <= clock.now()) {
      this.ctx.logger.warn(`Job "${name}": its one-shot time ${iso(at)} has passed; it does not run (trigger it to run it now).`);
      return;
    }
    const requestId = randomUUID();
    this.after(at - clock.now(), name, async () => {
      // Far times wake once an hour (a timer cannot wait longer than 24.8 days) and look again.
      if (at > clock.now() + CLOCK_MARGIN_MS) return this.scheduleOneShot(name, at);
      if (this.mirror.state(name)?.paused) {
        this.ctx.logger.warn(`Job "${name}": its one-shot time ${iso(at)} came while it was paused; it does not run.`);
        return;
      }
      this.registeredOutcome(name, await this.ctx.coordinator.requestTrigger(name, 'SCHEDULE', `at:${at}`, ONE_SHOT_WINDOW_MS, requestId));
    }, ONE_SHOT_WINDOW_MS / 2);
  }

  /**
   * A request of this replica's own (a start run, a one-shot) for a job Redis does not know: Redis
   * lost its state and this replica has not re-created the job yet. Thrown, so the request is
   * sent again after the resync that re-creates it, rather than taken as done.
   */
  private registeredOutcome(name: string, outcome: TriggerOutcome): TriggerOutcome {
    if (outcome.status !== 'unknown') return outcome;
    this.resync();
    throw new Error(`job "${name}" is not registered in Redis (it lost its state); its request is sent again once the job is re-created`);
  }

  /**
   * Calls `request` after `delayMs` unless the replica stops first. A failed request (Redis
   * away) is reported and tried again every second for `retryFor` ms: within its window, a
   * request another replica made already makes a retry run nothing more.
   */
  private after(delayMs: number, name: string, request: () => Promise<unknown>, retryFor: number, since?: number): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (this.ctx.life.stopping) return;
      const firstTry = since ?? Date.now();
      // After a whole resync: Redis back from an outage empty must have the job registered again.
      this.synced().then(request).catch((error) => {
        this.ctx.report('sync', error, name);
        if (Date.now() - firstTry < retryFor) this.after(CLAIM_RETRY_MS, name, request, retryFor, firstTry);
      });
    }, Math.min(MAX_TIMER_MS, Math.max(0, delayMs)));
    timer.unref();
    this.timers.add(timer);
  }
}
