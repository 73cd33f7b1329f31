import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { filter, Subscription } from 'rxjs';
import { ClusterMembership } from '../cluster/cluster-membership.service';
import { Coordinator } from '../coordination/coordinator.interface';
import { RESOLVED_SCHEDULER_OPTIONS } from '../scheduler.constants';
import type { ResolvedSchedulerOptions } from '../scheduler-options.resolver';
import { JobRegistry } from '../scheduling/job.registry';
import { SHUTDOWN_RELEASE_MS, withDeadline } from '../scheduling/orchestrator-context';
import type { RunSupervisor } from '../scheduling/run-supervisor';
import { SchedulerOrchestrator } from '../scheduling/scheduler.orchestrator';
import { ContinuousSlot, SlotHost, SlotVerdict } from './continuous-slot';

/**
 * Runs this replica's continuous jobs (`@DistributedJob({ continuous })`) where it is chosen.
 * Every replica computes the same choice from the same membership (`ClusterMembership`'s
 * placement, with each job's strategy, labels and max), after every heartbeat, and heartbeats
 * are sent at once on every join and leave: so the chosen set follows the membership as mgmt's
 * `Next()` stream does. The slot leases in the coordinator, not this choice, bound the runs:
 * views that differ for a moment cannot make more than `max` run at once.
 */
@Injectable()
export class ContinuousJobs implements BeforeApplicationShutdown, OnApplicationShutdown, SlotHost {
  readonly logger = new Logger('DistributedScheduler');
  private readonly slots = new Map<string, ContinuousSlot>();
  /** Continuous jobs paused cluster-wide, as last read from the coordinator. */
  private readonly paused = new Set<string>();
  private readonly subscriptions: Subscription[] = [];
  /** Set after this replica's first heartbeat: before, its placement knows only itself. */
  private placed = false;
  private stopping = false;
  private found = false;
  /** Fires when this replica's session lapses on its own clock, unless a heartbeat renews it first. */
  private sessionTimer: NodeJS.Timeout | null = null;

  constructor(
    @Inject(RESOLVED_SCHEDULER_OPTIONS) private readonly options: ResolvedSchedulerOptions,
    readonly coordinator: Coordinator,
    private readonly registry: JobRegistry,
    private readonly cluster: ClusterMembership,
    private readonly orchestrator: SchedulerOrchestrator,
  ) {
    // Subscribed now, before any heartbeat: the first placement is not missed.
    this.subscriptions.push(
      cluster.placed$.subscribe(() => {
        this.placed = true;
        this.watchSession();
        this.reconcile();
      }),
      coordinator.events$
        .pipe(filter((event) => event.type === 'changed'))
        .subscribe((event) => void this.readPaused((event as { names: string[] }).names)),
      // Back after an outage: pauses and resumes announced meanwhile were missed.
      coordinator.available$.pipe(filter(Boolean)).subscribe(() => void this.readPaused(registry.names())),
    );
  }

  get instanceId(): string {
    return this.options.instanceId;
  }

  get lockTtl(): number {
    return this.options.lockTtl;
  }

  get runs(): RunSupervisor {
    return this.orchestrator.leasedRuns;
  }

  /** Why this replica must not run the job now, or null if it must. */
  verdict(name: string): SlotVerdict {
    if (this.stopping) return 'shutdown';
    if (!this.placed || !this.orchestrator.isRunning) return 'waiting';
    if (this.sessionLapsed()) return 'lease-lost';
    if (this.paused.has(name)) return 'paused';
    return this.cluster.placement.mayClaim(name) ? null : 'unchosen';
  }

  pausedSeen(name: string): void {
    this.paused.add(name);
    this.slots.get(name)?.reconcile();
  }

  report(error: unknown, name: string): void {
    if (this.coordinator.isAvailable()) this.logger.error(`Continuous job "${name}": a slot could not be taken: ${(error as Error).message}`);
  }

  /**
   * Other replicas may take this one's slots once its session lapses (slot.lua counts a lease only
   * while its holder's session lives), so its runs stop by then: cut off from Redis, paused or
   * too busy to heartbeat, it must not run on beside its replacement. Embedded, the one process
   * has no one to hand over to: a stalled event loop must not abort its runs.
   */
  private sessionLapsed(): boolean {
    return this.coordinator.kind === 'redis' && Date.now() >= this.stopRunsAt();
  }

  /**
   * A fifth of the TTL before the session could lapse in Redis: the runs' abort is not delayed
   * past it by a late timer or a slow handler's signal. A live replica renews its session every
   * third of the TTL, so this costs it nothing.
   */
  private stopRunsAt(): number {
    return this.cluster.sessionExpiresAt - this.options.cluster.sessionTtl / 5;
  }

  private watchSession(): void {
    if (this.coordinator.kind !== 'redis') return;
    if (this.sessionTimer) clearTimeout(this.sessionTimer);
    this.sessionTimer = setTimeout(() => this.reconcile(), Math.max(0, this.stopRunsAt() - Date.now())).unref();
  }

  /** The continuous jobs this replica runs, once its jobs are known (the explorer ran at module init). */
  private ensureSlots(): void {
    if (this.found) return;
    this.found = true;
    for (const { definition } of this.registry.all()) {
      if (definition.continuous) this.slots.set(definition.name, new ContinuousSlot(definition.name, definition.continuous, this));
    }
  }

  private reconcile(): void {
    this.ensureSlots();
    for (const slot of this.slots.values()) slot.reconcile();
  }

  private async readPaused(changed: string[]): Promise<void> {
    this.ensureSlots();
    const names = changed.filter((name) => this.slots.has(name));
    if (names.length === 0) return;
    try {
      for (const record of await this.coordinator.describe(names)) {
        if (record.paused) this.paused.add(record.name);
        else this.paused.delete(record.name);
      }
    } catch {
      // Unreadable now (Redis away, a corrupt key): the slot script refuses a paused job anyway.
      return;
    }
    for (const name of names) this.slots.get(name)?.reconcile();
  }

  /**
   * Before the scheduler drains (this provider depends on it, so Nest calls it first): a
   * continuous run would hold the drain for the whole `shutdownTimeout`, so each is aborted now
   * (`shutdown`) and its slot released, for a replica still chosen to take it.
   */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopping = true;
    if (this.sessionTimer) clearTimeout(this.sessionTimer);
    this.subscriptions.splice(0).forEach((subscription) => subscription.unsubscribe());
    const slots = [...this.slots.values()];
    slots.forEach((slot) => slot.reconcile());
    await withDeadline(Promise.all(slots.map((slot) => slot.idle())), Date.now() + SHUTDOWN_RELEASE_MS);
  }

  onApplicationShutdown(): void {
    if (this.sessionTimer) clearTimeout(this.sessionTimer);
    this.subscriptions.splice(0).forEach((subscription) => subscription.unsubscribe());
  }
}
