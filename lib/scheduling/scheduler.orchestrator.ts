import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { Observable, Subject, Subscription, distinctUntilChanged } from 'rxjs';
import {
  ClaimRequest,
  ClaimResult,
  CoordinationEvent,
  Coordinator,
  CorruptKey,
  OwnLease,
  RunReport,
  TriggerOutcome,
} from '../coordination/coordinator.interface';
import { ClaimInterruptedError } from '../coordination/claim-interrupted.error';
import { AbortCause, JobAbortedError } from '../errors';
import { PendingCancels } from './pending-cancels';
import { HEARTBEAT_INTERVAL_MS, MEMBER_TTL_MS, RESOLVED_SCHEDULER_OPTIONS } from '../scheduler.constants';
import type { ResolvedSchedulerOptions } from '../scheduler-options.resolver';
import type { DueEntry } from './due-queue';
import { DueLoop } from './due-loop';
import type { JobContext } from './job-context.interface';
import { executeJob, RunOutcome } from './job.runner';
import { JobRegistry } from './job.registry';
import { JobMirror } from './job-mirror';
import type { CoordinatorClock } from './coordinator-clock';
import { LeaseTimer } from './lease-timer';
import { CLAIM_RETRY_MS, CLOCK_MARGIN_MS, iso, MAX_TIMER_MS, OrchestratorContext, ReplicaLife, SHUTDOWN_RELEASE_MS, withDeadline } from './orchestrator-context';
import { TickBatcher } from './tick-batcher';
import { registration, StateRestore } from './state-restore';
import { RunRecorder, RunStart } from './run-recorder';
import { unrecorded } from './no-run-records';
import { UnknownJobError } from '../errors';
import type { SchedulerErrorEvent, SchedulerErrorPhase } from './scheduler-error-event.interface';
import { LeaseDiagnosis } from './lease-diagnosis';

/** How long bootstrap waits for the first synchronization before going on without Redis. */
const FIRST_SYNC_WAIT_MS = 3_000;
/** Replicas that start within this long of each other share one `runOnStart` run. */
const START_RUN_WINDOW_MS = 60_000;
/**
 * Replicas request a one-shot (`at`) run at its time, each by its own clock; requests within
 * this long of the first share its run, so clock skew up to it cannot run a one-shot twice.
 */
const ONE_SHOT_WINDOW_MS = 10 * 60_000;
/** How many recent fencing tokens a replica remembers to never start one run twice. */
const MAX_REMEMBERED_TOKENS = 10_000;
/**
 * Announcements travel on the subscriber's connection, heartbeat replies on the client's: a
 * heartbeat may read a version whose announcement is still on its way. It counts as missed only
 * if it has not arrived this long after.
 */
const ANNOUNCEMENT_GRACE_MS = 1_000;

/** What starting a run needs to know of its claim (or adopted lease, or task lease). */
type RunClaim = Pick<OwnLease, 'fencingToken' | 'scheduledAt' | 'startedAt' | 'trigger' | 'taskId'>;

interface ActiveRun {
  name: string;
  fencingToken: number;
  controller: AbortController;
  /** Set when the lease is gone (expired and taken, or cancelled): nothing is left to release. */
  leaseLost: boolean;
  /** Set once the handler returned (or threw): a lease lost after that does not abort the run. */
  settled?: boolean;
  /** Gives the lease up (aborts the run) before it can expire unrenewed. */
  lease: LeaseTimer;
  done: Promise<void>;
}

/**
 * The scheduling loop of one replica. It keeps a mirror of its jobs' due times, sleeps until the
 * earliest, and claims the fires then due in one round trip; the coordinator decides which
 * replica runs each. Changes made elsewhere arrive as events, so no job is polled.
 */
@Injectable()
export class SchedulerOrchestrator implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger('DistributedScheduler');
  private readonly claiming = new Set<string>();
  private readonly claimsInFlight = new Set<Promise<void>>();
  private readonly runs = new Map<string, ActiveRun>();
  private readonly unreported: RunReport[] = [];
  private readonly finishes = new TickBatcher<RunReport, boolean | CorruptKey>((reports) => this.coordinator.finish(reports));
  private readonly leaseDiagnosis: LeaseDiagnosis;
  private readonly errors = new Subject<SchedulerErrorEvent>();
  private readonly subscriptions: Subscription[] = [];
  private extendTimer?: NodeJS.Timeout;
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
  /** Fencing tokens of runs started here lately, so that a run adopted and claimed is not started twice. */
  private readonly startedTokens = new Set<string>();
  /** Cancels that overtook the claim reply of the run they name: applied when it starts. */
  private readonly pendingCancels = new PendingCancels();
  private syncChain: Promise<void> = Promise.resolve();
  private changedNames = new Set<string>();
  private firstSync!: () => void;
  private readonly firstSynced = new Promise<void>((resolve) => (this.firstSync = resolve));
  private readonly loop: DueLoop;
  private readonly mirror: JobMirror;

  readonly errors$: Observable<SchedulerErrorEvent> = this.errors.asObservable();

  constructor(
    @Inject(RESOLVED_SCHEDULER_OPTIONS) private readonly options: ResolvedSchedulerOptions,
    private readonly coordinator: Coordinator,
    private readonly registry: JobRegistry,
    private readonly recorder: RunRecorder,
  ) {
    const report = (phase: SchedulerErrorPhase, error: unknown, job?: string) => this.report(phase, error, job);
    const ctx: OrchestratorContext = { options, coordinator, registry, logger: this.logger, life: this.life, report };
    this.loop = new DueLoop(ctx, (due) => this.claimDue(due));
    this.mirror = new JobMirror(ctx, this.loop, (name) => void this.resync([name]));
    this.leaseDiagnosis = new LeaseDiagnosis(2 * options.lockTtl, Math.floor(options.lockTtl / 3));
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
    await withDeadline(Promise.all(this.claimsInFlight), deadline);
    const active = [...this.runs.values()];
    if (active.length > 0) {
      this.logger.log(
        `Shutting down: waiting up to ${inSeconds(deadline - Date.now())} for ${active.length} running job(s) to finish ` +
          `(${active.map((run) => run.name).join(', ')}); the ones still running then are aborted.`,
      );
      const finished = Promise.all(active.map((run) => run.done));
      if (!(await withDeadline(finished, deadline))) {
        for (const run of this.runs.values()) this.abortRun(run, 'shutdown', 'the application is shutting down');
        await withDeadline(Promise.all([...this.runs.values()].map((run) => run.done)), Date.now() + SHUTDOWN_RELEASE_MS);
      }
    }
    clearInterval(this.extendTimer);
    this.leaseDiagnosis.unwatch();
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
    return [...this.runs.values()].map(({ name, fencingToken }) => ({ name, fencingToken }));
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
    if (full) await this.flushUnreported();
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
    for (const lease of snapshot.ownLeases) this.adopt(lease);
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
      const key = runKey(event.name, event.fencingToken);
      const run = this.runs.get(key);
      // A cancel can overtake the claim reply of its run (another connection): kept until it arrives.
      if (!run && !this.startedTokens.has(key)) this.pendingCancels.add(key, event.reason);
      else if (run) this.cancelRun(run, event.reason);
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

  // --- claims ---------------------------------------------------------------------------------

  /** Claims the entries the loop found due that still describe a fire to claim. */
  private claimDue(due: DueEntry[]): void {
    const entries = due.filter((entry) => this.takeForClaim(entry));
    if (entries.length === 0) return;
    const claiming = this.claim(entries).catch((error) => this.report('claim', error));
    this.claimsInFlight.add(claiming);
    void claiming.finally(() => this.claimsInFlight.delete(claiming));
  }

  /** True if the entry still describes a fire to claim; marks it as being claimed. */
  private takeForClaim(entry: DueEntry): boolean {
    const key = claimKey(entry);
    if (!this.mirror.holds(entry) || this.claiming.has(key)) return false;
    this.claiming.add(key);
    return true;
  }

  private async claim(entries: DueEntry[]): Promise<void> {
    let requests: ClaimRequest[] = [];
    let results: ClaimResult[];
    try {
      const now = this.clock.latest();
      requests = entries.map((entry) => this.claimRequest(entry, now));
      results = await this.coordinator.claim(requests, this.options.instanceId, this.options.lockTtl);
    } catch (error) {
      // The batches answered before the failure have claimed: run what they won.
      const settled = error instanceof ClaimInterruptedError ? error.settled : [];
      settled.forEach((result, index) => this.settle(entries[index], requests[index], result));
      const failed = entries.slice(settled.length);
      failed.forEach((entry) => this.claiming.delete(claimKey(entry)));
      this.report('claim', error instanceof ClaimInterruptedError ? error.cause : error);
      // While Redis is away, the resync on its return re-arms everything.
      if (this.coordinator.isAvailable()) {
        failed.forEach((entry) => this.loop.push({ ...entry, at: this.now() + CLAIM_RETRY_MS }));
        // A claim that timed out or lost its reply may have run all the same: ask Redis at once
        // (after it, on the same connection) for this replica's live leases of these jobs and
        // run them; the retry, if it still goes, is answered with the same lease (claim.lua).
        void this.resync([...new Set(failed.map((entry) => entry.name))]);
        this.loop.arm();
      }
      return;
    }
    results.forEach((result, index) => this.settle(entries[index], requests[index], result));
    this.loop.arm();
  }

  private claimRequest(entry: DueEntry, now: number): ClaimRequest {
    const state = this.mirror.state(entry.name)!;
    const schedule = this.mirror.scheduleOf(state);
    let next = null;
    // From no earlier than the fire claimed: with `now` a little behind it, an `every` job would
    // otherwise restart from `now`, and the claim script would refuse the due time it is serving.
    if (schedule && entry.member === undefined) next = schedule.next(state.base, Math.max(now, entry.due!));
    // A manual run restarts the period (as cronutil's Trigger); queued and start runs leave the cadence alone.
    else if (schedule && this.mirror.trigger(entry.member!)?.trigger === 'MANUAL') next = schedule.next(null, now);
    const threshold = entry.member === undefined ? this.registry.get(entry.name)?.definition.threshold : null;
    return { name: entry.name, rev: state.rev, next, due: entry.due, member: entry.member, ...(threshold != null ? { threshold } : {}) };
  }

  /** Now, by the coordinator's clock as far as this replica can tell. */
  private now(): number {
    return this.clock.now();
  }

  private settle(entry: DueEntry, request: ClaimRequest, result: ClaimResult): void {
    this.claiming.delete(claimKey(entry));
    const { name } = entry;
    const state = this.mirror.state(name);
    // A fire or a trigger: what the logs call it (a trigger by its id, as its receipt does).
    const pending = entry.member !== undefined ? this.mirror.trigger(entry.member) : undefined;
    const what = (scheduledAt: number) => {
      if (!pending) return `the fire due at ${iso(scheduledAt)}`;
      if (pending.trigger === 'MANUAL') return `the manual trigger ${pending.id} requested at ${iso(scheduledAt)}`;
      return pending.trigger === 'EVENT' ? `the start run (runOnStart) requested at ${iso(scheduledAt)}` : `the queued run requested at ${iso(scheduledAt)}`;
    };
    // A trigger's `next` (a manual run restarts the period) applies only if it ran.
    const consume = (ran = false) => {
      if (entry.member !== undefined) this.mirror.dropTrigger(entry.member);
      if (request.next && state && !state.paused && (entry.member === undefined || ran)) {
        Object.assign(state, request.next);
        this.loop.queueDue(name, state.due!);
      }
    };
    switch (result.status) {
      case 'claimed':
        consume(true);
        // Even while stopping: the fire is ours now, and shutdown waits for the run. Only once
        // shutdown is over is it handed back.
        if (this.life.closed) void this.release({ name, fencingToken: result.fencingToken, status: 'stopped', error: 'the replica shut down' });
        // Redis started the lease when it read its clock for the claim.
        else this.startRun(name, result, result.startedAt, result.startedAt + this.options.lockTtl);
        return;
      case 'skipped':
        consume();
        this.logger.warn(
          `Job "${name}": ${what(result.scheduledAt)} was skipped: ` +
            (result.reason === 'running' ? `a run is still going on instance "${result.holder}" (overlap: 'skip').` : `the job is locked by "${result.holder}".`),
        );
        return;
      case 'late':
        consume();
        this.logger.warn(
          `Job "${name}": the fire due at ${iso(result.scheduledAt)} was skipped: it was claimed ${result.lateMs} ms late, ` +
            `past its threshold of ${request.threshold} ms.`,
        );
        return;
      case 'queued':
        consume();
        this.logger.log(`Job "${name}": ${what(result.scheduledAt)} will run when the run on instance "${result.holder}" ends (overlap: 'queue-one').`);
        return;
      case 'moved':
        if (!state || result.rev !== state.rev) return void this.resync([name]);
        state.due = result.due;
        state.base = result.base;
        if (result.due !== null) this.loop.queueDue(name, result.due);
        return;
      case 'early':
        this.loop.push({ ...entry, at: this.now() + result.waitMs });
        return;
      case 'gone':
        if (entry.member !== undefined) this.mirror.dropTrigger(entry.member);
        return;
      case 'stale':
      case 'missing':
        // The resync queues the trigger again, with the job's current revision.
        if (entry.member !== undefined) this.mirror.dropTrigger(entry.member);
        return void this.resync([name]);
      case 'corrupt':
        return this.mirror.isolate({ name, key: result.key, problem: result.problem });
    }
  }

  // --- runs ----------------------------------------------------------------------------------

  /** A live lease of this replica that it has no run for: its claim's reply was lost. Run it now. */
  private adopt(lease: OwnLease): void {
    const key = runKey(lease.name, lease.fencingToken);
    if (this.runs.has(key) || this.startedTokens.has(key) || this.life.closed) return;
    this.logger.warn(
      lease.taskId === undefined
        ? `Job "${lease.name}": running the fire due at ${iso(lease.scheduledAt)}, claimed by this replica although the claim's reply was lost (timed out or the connection dropped).`
        : `Job "${lease.name}": running task ${lease.taskId}, dispatched to this replica although the lease's reply was lost (timed out or the connection dropped).`,
    );
    // Its deadline is its real expiry, which may be close: renewed at once, given up if it cannot be.
    this.startRun(lease.name, lease, this.clock.now(), lease.expiresAt);
    void this.extendLeases();
  }

  /**
   * Runs a task created with `TaskManager.create` on this replica, under a lease of its own (so
   * it can be stopped from any replica and its fencing token orders its attempts).
   */
  async runTask(name: string, taskId: number): Promise<void> {
    if (!this.registry.has(name)) throw new UnknownJobError(name);
    if (this.life.stopping) throw new Error('the replica is shutting down');
    // By request id: a lease request resent after a reconnection gets this lease, not a second one.
    const lease = await this.coordinator.lease(name, this.options.instanceId, this.options.lockTtl, taskId, randomUUID());
    if (!lease) throw new UnknownJobError(name);
    const run = { fencingToken: lease.fencingToken, scheduledAt: lease.startedAt, startedAt: lease.startedAt, trigger: 'EVENT' as const, taskId };
    this.startRun(name, run, lease.startedAt, lease.startedAt + this.options.lockTtl);
  }

  /** `leaseKnownAt` and `leaseExpiresAt` (coordinator's clock): how long the run's lease is valid without renewal. */
  private startRun(name: string, claim: RunClaim, leaseKnownAt: number, leaseExpiresAt: number): void {
    const key = runKey(name, claim.fencingToken);
    if (this.runs.has(key) || this.startedTokens.has(key)) return;
    this.startedTokens.add(key);
    if (this.startedTokens.size > MAX_REMEMBERED_TOKENS) this.startedTokens.delete(this.startedTokens.values().next().value!);
    const controller = new AbortController();
    // Cut off from Redis, a replica cannot tell whether its lease still holds: once it may have
    // expired, another replica may run the job, so this run must stop.
    const lease = new LeaseTimer(this.clock, () => this.abortRun(run, 'lease-lost', `its lock could not be renewed before it expired: ${this.leaseDiagnosis.explain()}`));
    const run: ActiveRun = { name, fencingToken: claim.fencingToken, controller, leaseLost: false, lease, done: Promise.resolve() };
    lease.renew(leaseKnownAt, leaseExpiresAt);
    this.runs.set(key, run);
    this.extendLeasesWhileRunning();
    // Revoked before this replica heard it had won: aborted before its handler runs.
    const cancelled = this.pendingCancels.take(key);
    if (cancelled) this.cancelRun(run, cancelled);
    run.done = this.execute(run, claim);
  }

  private async execute(run: ActiveRun, claim: RunClaim): Promise<void> {
    const job = this.registry.get(run.name)!;
    const scheduledAt = new Date(claim.scheduledAt);
    // On the clock of scheduledAt (Redis's), and never before the claim that started it.
    const startedAt = new Date(Math.max(this.clock.now(), claim.startedAt));
    const { instanceId } = this.options;
    const start: RunStart = { job, trigger: claim.trigger, scheduledAt, startedAt, fencingToken: claim.fencingToken, instanceId, taskId: claim.taskId };
    const record = await this.recorder.start(start).catch((error) => {
      // The recorder handles the database's failures itself; this is a bug in it, and must not stop the job.
      this.report('record', error, run.name);
      return unrecorded(start);
    });
    if (!record) {
      // The records say this run must not happen (already recorded, stopped, or superseded).
      return this.endRun(run, { status: 'stopped', error: new JobAbortedError(run.name, 'stopped', 'its records refused it') }, false);
    }
    const context: JobContext = {
      name: run.name,
      scheduledAt,
      startedAt,
      trigger: record.trigger,
      signal: run.controller.signal,
      fencingToken: claim.fencingToken,
      instanceId,
      logger: record.logger,
      executionId: record.executionId,
      taskId: record.taskId,
      parameters: record.parameters,
      checkIn: (data) => record.checkIn(data),
    };
    if (run.controller.signal.aborted) {
      // Stopped, replaced or shut down while its records were being written: the handler never runs.
      const reason = run.controller.signal.reason as JobAbortedError;
      const outcome: RunOutcome = { status: reason.kind === 'timeout' ? 'timeout' : 'stopped', error: reason };
      await record.finish(outcome);
      return this.endRun(run, outcome, false);
    }
    const outcome = await executeJob(job, context, run.controller);
    run.settled = true;
    // The records first: a stop that finds the lease gone must find the run's end recorded too.
    await record.finish(outcome);
    await this.endRun(run, outcome);
  }

  /** Ends a run: reports its failure (if its handler ran) and releases its lease. */
  private async endRun(run: ActiveRun, outcome: RunOutcome, handlerRan = true): Promise<void> {
    this.runs.delete(runKey(run.name, run.fencingToken));
    run.lease.clear();
    if (this.runs.size === 0) {
      clearInterval(this.extendTimer);
      this.extendTimer = undefined;
    }
    if (handlerRan && outcome.status === 'error') {
      this.logger.error(`Job "${run.name}" failed: ${outcome.error!.message}`, outcome.error!.stack);
      this.report('run', outcome.error, run.name);
    } else if (handlerRan && outcome.status === 'timeout') {
      this.logger.warn(outcome.error!.message);
    }
    if (run.leaseLost) return;
    await this.release({ name: run.name, fencingToken: run.fencingToken, status: outcome.status, error: outcome.error?.message ?? null });
  }

  private async release(report: RunReport): Promise<void> {
    try {
      const released = await this.leaseDiagnosis.timed(() => this.finishes.add(report));
      if (released === false) {
        this.logger.warn(
          `Job "${report.name}": the run with fencing token ${report.fencingToken} ended (${report.status}), but its lease had expired ` +
            `before that reached Redis: ${this.leaseDiagnosis.explain()}.`,
        );
      } else if (released !== true) this.mirror.isolate(released);
    } catch (error) {
      // Kept and sent again after the coordinator returns; until then the lease expires by itself.
      this.unreported.push(report);
      this.report('finish', error, report.name);
    }
  }

  private async flushUnreported(): Promise<void> {
    await Promise.all(this.unreported.splice(0).map((report) => this.release(report)));
  }

  private extendLeasesWhileRunning(): void {
    if (this.extendTimer) return;
    this.extendTimer = setInterval(() => void this.extendLeases(), Math.floor(this.options.lockTtl / 3));
    this.extendTimer.unref();
    this.leaseDiagnosis.watch();
  }

  private async extendLeases(): Promise<void> {
    // A run whose lease could not be renewed in time was aborted by its own timer (LeaseTimer).
    this.leaseDiagnosis.tick();
    const held = [...this.runs.values()].filter((run) => !run.leaseLost);
    if (held.length === 0) return;
    // Redis extends each lease to its clock at the script + lockTtl: no earlier than from now.
    const sentAt = this.clock.now();
    try {
      const kept = await this.leaseDiagnosis.timed(() => this.coordinator.extend(held, this.options.lockTtl));
      kept.forEach((ok, index) => {
        if (ok === true) held[index].lease.renew(sentAt, sentAt + this.options.lockTtl);
        else if (ok === false) {
          this.abortRun(held[index], 'lease-lost', `its lock expired and may be held by another run now: ${this.leaseDiagnosis.explain()}`);
        } else {
          this.abortRun(held[index], 'lease-lost', `its lease could not be renewed: key "${ok.key}" holds data the scheduler did not write`);
          this.mirror.isolate(ok);
        }
      });
    } catch (error) {
      this.report('extend', error);
    }
  }

  private cancelRun(run: ActiveRun, reason: 'replaced' | 'stopped'): void {
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
    if (cause !== 'shutdown') this.logger.warn(`Job "${run.name}" (fencing token ${run.fencingToken}) is aborted: ${detail}.`);
    run.controller.abort(new JobAbortedError(run.name, cause, detail));
  }

  private report(phase: SchedulerErrorPhase, error: unknown, job?: string): void {
    const cause = error instanceof Error ? error : new Error(String(error));
    this.errors.next({ phase, job, error: cause, at: new Date() });
    // Connection errors are logged once per outage by the coordinator; handler errors by endRun.
    // Corrupt data is logged once per episode by CorruptJobs.
    if (phase !== 'run' && phase !== 'data' && this.coordinator.isAvailable()) {
      this.logger.error(`${phase}${job ? ` of job "${job}"` : ''} failed: ${cause.message}`, cause.stack);
    }
  }
}

function runKey(name: string, fencingToken: number): string {
  return `${name}#${fencingToken}`;
}

function claimKey(entry: DueEntry): string {
  return entry.member ?? `${entry.name}@${entry.due}`;
}

/** A wait in the words of a log line: `10 s`, `2.5 s`, `0 s`. */
function inSeconds(ms: number): string {
  return `${+(Math.max(0, ms) / 1000).toFixed(1)} s`;
}
