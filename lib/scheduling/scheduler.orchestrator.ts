import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { Observable, Subject, Subscription, distinctUntilChanged } from 'rxjs';
import { CoordinationEvent, Coordinator, TriggerOutcome } from '../coordination/coordinator.interface';
import { HEARTBEAT_INTERVAL_MS, MEMBER_TTL_MS, RESOLVED_SCHEDULER_OPTIONS } from '../scheduler.constants';
import type { ResolvedSchedulerOptions } from '../scheduler-options.resolver';
import { DueLoop } from './due-loop';
import { FireClaims } from './fire-claims';
import { JobRegistry } from './job.registry';
import { JobMirror } from './job-mirror';
import type { CoordinatorClock } from './coordinator-clock';
import { CLAIM_RETRY_MS, CLOCK_MARGIN_MS, iso, MAX_TIMER_MS, OrchestratorContext, ReplicaLife, SHUTDOWN_RELEASE_MS, withDeadline } from './orchestrator-context';
import { registration, StateRestore } from './state-restore';
import { RunRecorder } from './run-recorder';
import { RunSupervisor } from './run-supervisor';
import type { SchedulerErrorEvent, SchedulerErrorPhase } from './scheduler-error-event.interface';

/** How long bootstrap waits for the first synchronization before going on without Redis. */
const FIRST_SYNC_WAIT_MS = 3_000;
/** Replicas that start within this long of each other share one `runOnStart` run. */
const START_RUN_WINDOW_MS = 60_000;
/**
 * Replicas request a one-shot (`at`) run at its time, each by its own clock; requests within
 * this long of the first share its run, so clock skew up to it cannot run a one-shot twice.
 */
const ONE_SHOT_WINDOW_MS = 10 * 60_000;
/**
 * Announcements travel on the subscriber's connection, heartbeat replies on the client's: a
 * heartbeat may read a version whose announcement is still on its way. It counts as missed only
 * if it has not arrived this long after.
 */
const ANNOUNCEMENT_GRACE_MS = 1_000;

/**
 * The scheduling loop of one replica. It keeps a mirror of its jobs' due times, sleeps until the
 * earliest, and claims the fires then due in one round trip; the coordinator decides which
 * replica runs each. Changes made elsewhere arrive as events, so no job is polled.
 */
@Injectable()
export class SchedulerOrchestrator implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger('DistributedScheduler');
  private readonly errors = new Subject<SchedulerErrorEvent>();
  private readonly subscriptions: Subscription[] = [];
  private heartbeatTimer?: NodeJS.Timeout;
  /** Timers of delayed `runOnStart` requests and of one-shot (`at`) requests. */
  private readonly bootTimers = new Set<NodeJS.Timeout>();
  private readonly life: ReplicaLife = { startedAt: 0, stopping: false, closed: false };
  private started = false;
  private registered = false;
  private bootTriggersSent = false;
  /**
   * The change version this replica has followed without a gap, in the epoch of the shared state
   * it knows: set by full syncs, moved on by each announcement that carries the next version.
   * A heartbeat that reads another version or epoch means a message was missed, or Redis lost its state.
   */
  private seen: { epoch: string; version: number } | null = null;
  /** Full syncs queued or running: a heartbeat before the first one ends has nothing to add. */
  private fullSyncsPending = 0;
  private readonly restorer: StateRestore;
  private syncChain: Promise<void> = Promise.resolve();
  private changedNames = new Set<string>();
  private firstSync!: () => void;
  private readonly firstSynced = new Promise<void>((resolve) => (this.firstSync = resolve));
  private readonly loop: DueLoop;
  private readonly mirror: JobMirror;
  private readonly runs: RunSupervisor;
  private readonly claims: FireClaims;

  readonly errors$: Observable<SchedulerErrorEvent> = this.errors.asObservable();

  constructor(
    @Inject(RESOLVED_SCHEDULER_OPTIONS) private readonly options: ResolvedSchedulerOptions,
    private readonly coordinator: Coordinator,
    private readonly registry: JobRegistry,
    private readonly recorder: RunRecorder,
  ) {
    const report = (phase: SchedulerErrorPhase, error: unknown, job?: string) => this.report(phase, error, job);
    const ctx: OrchestratorContext = { options, coordinator, registry, logger: this.logger, life: this.life, report };
    this.loop = new DueLoop(ctx, (due) => this.claims.claimDue(due));
    this.mirror = new JobMirror(ctx, this.loop, (name) => void this.resync([name]));
    this.runs = new RunSupervisor(ctx, recorder, this.mirror);
    this.claims = new FireClaims(ctx, this.mirror, this.loop, this.runs, (names) => void this.resync(names));
    this.restorer = new StateRestore(coordinator, options.instanceId, this.logger);
  }

  /** The coordinator's clock as this replica knows it: every due time is on it. */
  private get clock(): CoordinatorClock {
    return this.coordinator.clock;
  }

  async onApplicationBootstrap(): Promise<void> {
    if (this.options.autoStart) await this.start();
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.stop();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.coordinator.close();
    this.errors.complete();
  }

  get isRunning(): boolean {
    return this.started && !this.life.stopping;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.life.startedAt = Date.now();
    const count = this.registry.names().length;
    this.logger.log(
      this.coordinator.kind === 'redis'
        ? `Coordinating ${count} job(s) on ${this.coordinator.describeTarget()} under key prefix "${this.options.keyPrefix}" as instance "${this.options.instanceId}".`
        : `Running ${count} job(s) on the embedded coordinator: this process only. Set the \`redis\` option to run jobs once across replicas.`,
    );
    this.subscriptions.push(
      this.coordinator.events$.subscribe((event) => this.onEvent(event)),
      this.coordinator.available$.pipe(distinctUntilChanged()).subscribe((up) => (up ? void this.resync() : this.loop.disarm())),
    );
    await this.coordinator.connect();
    this.heartbeatTimer = setInterval(() => void this.beat(), HEARTBEAT_INTERVAL_MS).unref();
    // Hold bootstrap until the jobs are registered when Redis answers; never for long when it does not.
    let waited: NodeJS.Timeout | undefined;
    await Promise.race([this.firstSynced, new Promise<void>((resolve) => (waited = setTimeout(resolve, FIRST_SYNC_WAIT_MS)))]);
    clearTimeout(waited);
  }

  /**
   * Stops claiming, waits up to `shutdownTimeout` for claims in flight and running handlers, then
   * aborts the runs still going so their leases are released before the app closes.
   */
  async stop(): Promise<void> {
    if (!this.started || this.life.stopping) return;
    this.life.stopping = true;
    this.loop.disarm();
    clearInterval(this.heartbeatTimer);
    this.bootTimers.forEach((timer) => clearTimeout(timer));
    this.bootTimers.clear();
    this.subscriptions.splice(0).forEach((subscription) => subscription.unsubscribe());
    const deadline = Date.now() + this.options.shutdownTimeout;
    // A claim in flight may still start a run: wait for it (bounded: Redis may be away).
    await withDeadline(this.claims.inFlight(), deadline);
    await this.runs.drain(deadline);
    this.mirror.stop();
    await withDeadline(this.syncChain, Date.now() + SHUTDOWN_RELEASE_MS);
    await this.recorder.drain(Math.max(deadline, Date.now() + SHUTDOWN_RELEASE_MS));
    this.life.closed = true;
    // Leave the live set now, so the others take this replica's jobs without waiting for it to expire.
    if (this.coordinator.isAvailable()) {
      await withDeadline(this.coordinator.heartbeat(this.options.instanceId, MEMBER_TTL_MS, true), Date.now() + SHUTDOWN_RELEASE_MS);
    }
  }

  /** Runs that this replica has started and not yet ended. */
  runningHere(): { name: string; fencingToken: number }[] {
    return this.runs.running();
  }

  /**
   * Runs a task created with `TaskManager.create` on this replica, under a lease of its own (so
   * it can be stopped from any replica and its fencing token orders its attempts).
   */
  runTask(name: string, taskId: number): Promise<void> {
    return this.runs.runTask(name, taskId);
  }

  // --- synchronization -------------------------------------------------------------------------

  /** Reads the shared state of some jobs (or all) and re-arms; calls never overlap. */
  private resync(names?: string[]): Promise<void> {
    if (names === undefined) this.fullSyncsPending++;
    const next = this.syncChain
      .then(() => this.synchronize(names))
      .catch((error) => this.report('sync', error))
      .finally(() => names === undefined && this.fullSyncsPending--);
    this.syncChain = next;
    return next;
  }

  private async synchronize(names?: string[]): Promise<void> {
    if (!this.coordinator.isAvailable() || this.life.stopping) return;
    const full = names === undefined;
    // First, so that the first due times this replica computes (registration) are on Redis's clock.
    const heartbeat = full || !this.clock.known ? await this.coordinator.heartbeat(this.options.instanceId, MEMBER_TTL_MS) : null;
    if (heartbeat) this.loop.setMembers(heartbeat.members);
    if (!this.registered) {
      // After the latest time Redis's clock can read, so never at or before a fire it has served.
      const jobs = this.registry.all().map((job) => registration(job, undefined, this.clock.latest()));
      this.mirror.logRegistration(await this.coordinator.register(jobs, 'boot', this.options.instanceId));
      this.registered = true;
    }
    if (full) await this.runs.flushUnreported();
    const wanted = (names ?? this.registry.names()).filter((name) => this.registry.has(name));
    const snapshotAt = this.now();
    let snapshot = await this.coordinator.snapshot(wanted, this.options.instanceId);
    // Redis lost state: look at every job at once, so what was lost is re-created (and logged) together.
    if (!full && snapshot.missing.length > 0) return this.synchronize();
    if (snapshot.missing.length > 0) {
      // Redis lost these jobs (restarted without persistence, or flushed): create them again
      // with what this replica knew, never with a due time that may have been served (StateRestore).
      await this.restorer.restore(snapshot.missing.map((name) => this.registry.get(name)!), this.mirror.known);
      const again = await this.coordinator.snapshot(snapshot.missing, this.options.instanceId);
      snapshot = {
        ...again,
        states: [...snapshot.states, ...again.states],
        ownLeases: [...snapshot.ownLeases, ...again.ownLeases],
        corrupt: [...snapshot.corrupt, ...again.corrupt],
      };
    }
    // A trigger announced while the snapshot was on its way is not in it: keep those.
    const announcedMeanwhile = full ? this.mirror.pendingTriggers().filter((trigger) => trigger.requestedAt >= snapshotAt - CLOCK_MARGIN_MS) : [];
    if (full) {
      this.loop.clear();
      this.mirror.clearTriggers();
    }
    for (const state of snapshot.states) this.mirror.applyState(state);
    for (const corrupt of snapshot.corrupt) this.mirror.isolate(corrupt);
    for (const trigger of [...snapshot.triggers, ...announcedMeanwhile]) this.mirror.addTrigger(trigger);
    for (const lease of snapshot.ownLeases) this.runs.adopt(lease);
    if (full) {
      const version = Number(heartbeat!.version);
      if (!this.seen || this.seen.epoch !== heartbeat!.epoch || this.seen.version < version) this.seen = { epoch: heartbeat!.epoch, version };
      this.firstSync();
      if (!this.bootTriggersSent) await this.sendBootTriggers();
    }
    this.loop.arm();
  }

  private async sendBootTriggers(): Promise<void> {
    this.bootTriggersSent = true;
    for (const { definition } of this.registry.all()) {
      const { name, runOnStart, startDelay, at } = definition;
      // Replicas requesting it within the window share one start run; a retry of this request
      // is the same request (its id), so one that timed out but ran is not run again.
      const requestId = randomUUID();
      const requestStartRun = async () =>
        this.logSkippedStartRun(name, this.registeredOutcome(name, await this.coordinator.requestTrigger(name, 'EVENT', 'start', START_RUN_WINDOW_MS, requestId)));
      if (runOnStart && startDelay === 0) {
        // One failed request must not lose the start runs of the jobs after it: retried apart.
        await requestStartRun().catch((error) => {
          this.report('sync', error, name);
          this.after(CLAIM_RETRY_MS, name, requestStartRun, START_RUN_WINDOW_MS / 2);
        });
      } else if (runOnStart) this.after(this.life.startedAt + startDelay - Date.now(), name, requestStartRun, START_RUN_WINDOW_MS / 2);
      if (at !== null) this.scheduleOneShot(name, at);
    }
  }

  private logSkippedStartRun(name: string, outcome: TriggerOutcome): void {
    if (outcome.status !== 'skipped') return;
    this.logger.warn(
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
    if (at <= this.now()) {
      this.logger.warn(`Job "${name}": its one-shot time ${iso(at)} has passed; it does not run (trigger it to run it now).`);
      return;
    }
    const requestId = randomUUID();
    this.after(at - this.now(), name, async () => {
      // Far times wake once an hour (a timer cannot wait longer than 24.8 days) and look again.
      if (at > this.now() + CLOCK_MARGIN_MS) return this.scheduleOneShot(name, at);
      if (this.mirror.state(name)?.paused) {
        this.logger.warn(`Job "${name}": its one-shot time ${iso(at)} came while it was paused; it does not run.`);
        return;
      }
      this.registeredOutcome(name, await this.coordinator.requestTrigger(name, 'SCHEDULE', `at:${at}`, ONE_SHOT_WINDOW_MS, requestId));
    }, ONE_SHOT_WINDOW_MS / 2);
  }

  /**
   * A request of this replica's own (a start run, a one-shot) for a job Redis does not know: Redis
   * lost its state and this replica has not re-created the job yet. Thrown, so the request is
   * sent again after the resync that re-creates it, rather than taken as done.
   */
  private registeredOutcome(name: string, outcome: TriggerOutcome): TriggerOutcome {
    if (outcome.status !== 'unknown') return outcome;
    void this.resync();
    throw new Error(`job "${name}" is not registered in Redis (it lost its state); its request is sent again once the job is re-created`);
  }

  /**
   * Calls `request` after `delayMs` unless the replica stops first. A failed request (Redis
   * away) is reported and tried again every second for `retryFor` ms: within its window, a
   * request another replica made already makes a retry run nothing more.
   */
  private after(delayMs: number, name: string, request: () => Promise<unknown>, retryFor: number, since?: number): void {
    const timer = setTimeout(() => {
      this.bootTimers.delete(timer);
      if (this.life.stopping) return;
      const firstTry = since ?? Date.now();
      // After a whole resync: Redis back from an outage empty must have the job registered again.
      this.syncChain.then(request).catch((error) => {
        this.report('sync', error, name);
        if (Date.now() - firstTry < retryFor) this.after(CLAIM_RETRY_MS, name, request, retryFor, firstTry);
      });
    }, Math.min(MAX_TIMER_MS, Math.max(0, delayMs)));
    timer.unref();
    this.bootTimers.add(timer);
  }

  /** Renews membership; catches up with changes whose announcement this replica missed. */
  private async beat(): Promise<void> {
    if (!this.coordinator.isAvailable() || this.life.stopping) return;
    try {
      const { version, members, epoch } = await this.coordinator.heartbeat(this.options.instanceId, MEMBER_TTL_MS);
      this.setMembers(members);
      // A new epoch: Redis lost its state. A version not followed yet: a message may have been lost.
      if (!this.seen && this.fullSyncsPending > 0) return;
      if (!this.seen || this.seen.epoch !== epoch) return void (await this.resync());
      if (this.seen.version >= Number(version)) return;
      await new Promise((resolve) => setTimeout(resolve, ANNOUNCEMENT_GRACE_MS).unref());
      if (this.life.stopping) return;
      if (this.seen.epoch === epoch && this.seen.version < Number(version)) await this.resync();
    } catch (error) {
      this.report('sync', error);
    }
  }

  private setMembers(members: string[]): void {
    if (!this.loop.setMembers(members)) return;
    // Claim times depend on who is preferred: queue every fire again under the new set.
    this.loop.clear();
    this.mirror.queueAll();
    this.loop.disarm();
    this.loop.arm();
  }

  private onEvent(event: CoordinationEvent): void {
    if (this.life.stopping) return;
    if ((event.type === 'changed' || event.type === 'trigger') && this.seen && event.version === this.seen.version + 1) {
      this.seen.version = event.version;
    }
    if (event.type === 'trigger') {
      this.mirror.addTrigger(event);
      this.loop.arm();
    } else if (event.type === 'members') {
      void this.beat();
    } else if (event.type === 'cancel') {
      this.runs.cancel(event.name, event.fencingToken, event.reason);
    } else {
      // Batch the changes of one tick into one read.
      const first = this.changedNames.size === 0;
      event.names.filter((name) => this.registry.has(name)).forEach((name) => this.changedNames.add(name));
      if (first && this.changedNames.size > 0) {
        setImmediate(() => {
          const names = [...this.changedNames];
          this.changedNames.clear();
          void this.resync(names);
        });
      }
    }
  }

  /** Now, by the coordinator's clock as far as this replica can tell. */
  private now(): number {
    return this.clock.now();
  }

  private report(phase: SchedulerErrorPhase, error: unknown, job?: string): void {
    const cause = error instanceof Error ? error : new Error(String(error));
    this.errors.next({ phase, job, error: cause, at: new Date() });
    // Connection errors are logged once per outage by the coordinator; handler errors by endRun (RunSupervisor).
    // Corrupt data is logged once per episode by CorruptJobs.
    if (phase !== 'run' && phase !== 'data' && this.coordinator.isAvailable()) {
      this.logger.error(`${phase}${job ? ` of job "${job}"` : ''} failed: ${cause.message}`, cause.stack);
    }
  }
}
