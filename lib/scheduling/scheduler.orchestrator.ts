import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { Observable, Subject, Subscription, distinctUntilChanged } from 'rxjs';
import { Coordinator } from '../coordination/coordinator.interface';
import { HEARTBEAT_INTERVAL_MS, RESOLVED_SCHEDULER_OPTIONS } from '../scheduler.constants';
import { ClusterMembership } from '../cluster/cluster-membership.service';
import { heartbeatInterval } from '../cluster/cluster.constants';
import type { ResolvedSchedulerOptions } from '../scheduler-options.resolver';
import { BootTriggers } from './boot-triggers';
import { ClaimsInDoubt } from './claims-in-doubt';
import { DueLoop } from './due-loop';
import { FireClaims } from './fire-claims';
import { JobMirror } from './job-mirror';
import { JobRegistry } from './job.registry';
import { LostStateRestorer, MirrorSync } from './mirror-sync';
import { OrchestratorContext, ReplicaLife, SHUTDOWN_RELEASE_MS, withDeadline } from './orchestrator-context';
import { RunRecorder } from './run-recorder';
import { RunSupervisor } from './run-supervisor';
import { SupersededDefinitions } from './superseded-definitions';
import { LeaseRecovery } from '../retry/lease-recovery';
import type { MissedFires, SchedulerErrorEvent, SchedulerErrorPhase } from './scheduler-error-event.interface';

/** How long bootstrap waits for the first synchronization before going on without Redis. */
const FIRST_SYNC_WAIT_MS = 3_000;

/**
 * The scheduling loop of one replica. It keeps a mirror of its jobs' due times, sleeps until the
 * earliest, and claims the fires then due in one round trip; the coordinator decides which
 * replica runs each. Changes made elsewhere arrive as events, so no job is polled.
 *
 * The work is done by its parts, which it wires together and starts and stops: the mirror of the
 * jobs' shared state (JobMirror) kept in step by MirrorSync, the due-time loop (DueLoop), the
 * claims (FireClaims), the runs and their leases (RunSupervisor), and the start and one-shot
 * requests (BootTriggers).
 */
@Injectable()
export class SchedulerOrchestrator implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger('DistributedScheduler');
  private readonly errors = new Subject<SchedulerErrorEvent>();
  private readonly subscriptions: Subscription[] = [];
  private readonly life: ReplicaLife = { startedAt: 0, stopping: false, closed: false, leftLast: false };
  private started = false;
  private stopping?: Promise<void>;
  private heartbeatTimer?: NodeJS.Timeout;
  private readonly loop: DueLoop;
  private readonly mirror: JobMirror;
  private readonly runs: RunSupervisor;
  private readonly claims: FireClaims;
  private readonly boot: BootTriggers;
  private readonly sync: MirrorSync;
  private readonly recovery: LeaseRecovery;

  readonly errors$: Observable<SchedulerErrorEvent> = this.errors.asObservable();

  constructor(
    @Inject(RESOLVED_SCHEDULER_OPTIONS) private readonly options: ResolvedSchedulerOptions,
    private readonly coordinator: Coordinator,
    private readonly registry: JobRegistry,
    private readonly recorder: RunRecorder,
    private readonly cluster: ClusterMembership,
  ) {
    const report = (phase: SchedulerErrorPhase, error: unknown, job?: string, missed?: MissedFires) => this.report(phase, error, job, missed);
    const ctx: OrchestratorContext = { options, coordinator, registry, logger: this.logger, life: this.life, cluster, report };
    // Each part gets the ones it calls; the calls back (a claim on waking, a resync) go through the orchestrator.
    this.loop = new DueLoop(ctx, (due) => this.claims.claimDue(due));
    this.mirror = new JobMirror(ctx, this.loop, (name) => void this.sync.resync([name]));
    this.runs = new RunSupervisor(ctx, recorder, this.mirror, (name) => this.claims.runEnded(name));
    const inDoubt = new ClaimsInDoubt();
    this.claims = new FireClaims(ctx, this.mirror, this.loop, this.runs, (names) => this.sync.resync(names), inDoubt);
    this.boot = new BootTriggers(ctx, this.mirror, () => this.sync.synced(), () => void this.sync.resync());
    const superseded = new SupersededDefinitions(coordinator, registry, options.instanceId, this.logger, this.mirror.definitionsWarned, () => this.isRunning);
    this.sync = new MirrorSync(ctx, this.mirror, this.loop, this.runs, this.boot, inDoubt, superseded);
    cluster.reportRunsFrom(() => this.runs.running());
    this.recovery = new LeaseRecovery(ctx);
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

  /**
   * Snapshots are on (SnapshotPersister, at module init): the synchronization restores the
   * newest one's jobs that the coordinator lacks, before it registers or re-creates them.
   */
  useSnapshots(snapshots: LostStateRestorer): void {
    this.sync.snapshots = snapshots;
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
      this.coordinator.events$.subscribe((event) => this.sync.onEvent(event)),
      this.coordinator.available$.pipe(distinctUntilChanged()).subscribe((up) => (up ? void this.sync.resync() : this.loop.disarm())),
    );
    await this.coordinator.connect();
    this.heartbeatTimer = setInterval(() => void this.sync.beat(), heartbeatInterval(this.options.cluster.sessionTtl, HEARTBEAT_INTERVAL_MS)).unref();
    this.recovery.start();
    // Hold bootstrap until the jobs are registered when Redis answers; never for long when it does not.
    let waited: NodeJS.Timeout | undefined;
    await Promise.race([this.sync.firstSynced, new Promise<void>((resolve) => (waited = setTimeout(resolve, FIRST_SYNC_WAIT_MS)))]);
    clearTimeout(waited);
  }

  /**
   * Stops claiming, waits up to `shutdownTimeout` for claims in flight and running handlers, then
   * aborts the runs still going so their leases are released before the app closes.
   */
  stop(): Promise<void> {
    if (!this.started) return Promise.resolve();
    // Called again (the snapshot persister waits for it at shutdown): the same stop.
    this.stopping ??= this.stopNow();
    return this.stopping;
  }

  private async stopNow(): Promise<void> {
    this.life.stopping = true;
    this.loop.disarm();
    clearInterval(this.heartbeatTimer);
    this.recovery.stop();
    this.boot.stop();
    this.claims.stop();
    this.subscriptions.splice(0).forEach((subscription) => subscription.unsubscribe());
    const deadline = Date.now() + this.options.shutdownTimeout;
    // Hand-back starts here: leave the live set before draining, so the others become the
    // preferred replicas of this one's jobs at once (the leave is announced) and claim the due
    // times that come during the drain on time, not a backup's 100 ms late.
    if (this.coordinator.isAvailable()) {
      await withDeadline(this.cluster.leave(), Date.now() + SHUTDOWN_RELEASE_MS);
    }
    // A claim in flight may still start a run: wait for it (bounded: Redis may be away).
    await withDeadline(this.claims.inFlight(), deadline);
    await this.runs.drain(deadline);
    this.mirror.stop();
    await withDeadline(this.sync.synced(), Date.now() + SHUTDOWN_RELEASE_MS);
    await this.recorder.drain(Math.max(deadline, Date.now() + SHUTDOWN_RELEASE_MS));
    this.life.closed = true;
    // Leave again (a no-op unless a heartbeat in flight re-added it): its answer says whether a
    // replica is live now, one that may have booted during the drain (ReplicaLife.leftLast).
    if (this.coordinator.isAvailable()) {
      const leave = this.cluster.leave();
      leave.then(({ members }) => (this.life.leftLast = members.every((member) => member === this.options.instanceId))).catch(() => undefined);
      await withDeadline(leave, Date.now() + SHUTDOWN_RELEASE_MS);
    }
  }

  /** True once this replica has stopped and left the live set as the last live replica (see `ReplicaLife.leftLast`). */
  get leftLast(): boolean {
    return this.life.leftLast;
  }

  /** The runs of this replica and their leases: continuous jobs (ContinuousJobs) start and abort theirs there. */
  get leasedRuns(): RunSupervisor {
    return this.runs;
  }

  /** Runs that this replica has started and not yet ended. */
  runningHere(): { name: string; fencingToken: number }[] {
    return this.runs.running();
  }

  private report(phase: SchedulerErrorPhase, error: unknown, job?: string, missed?: MissedFires): void {
    const cause = error instanceof Error ? error : new Error(String(error));
    this.errors.next({ phase, job, error: cause, at: new Date(), ...(missed ? { missed } : {}) });
    // Connection errors are logged once per outage by the coordinator; handler errors by endRun (RunSupervisor).
    // Corrupt data is logged once per episode by CorruptJobs; missed due times (a notice) by FireClaims, at warn.
    if (phase !== 'run' && phase !== 'data' && phase !== 'missed' && this.coordinator.isAvailable()) {
      this.logger.error(`${phase}${job ? ` of job "${job}"` : ''} failed: ${cause.message}`, cause.stack);
    }
  }
}
