import type { CoordinationEvent } from '../coordination/coordinator.interface';
import type { BootTriggers } from './boot-triggers';
import type { ClaimsInDoubt } from './claims-in-doubt';
import type { CoordinatorClock } from './coordinator-clock';
import type { DueLoop } from './due-loop';
import type { JobMirror } from './job-mirror';
import { CLOCK_MARGIN_MS, OrchestratorContext } from './orchestrator-context';
import type { RunSupervisor } from './run-supervisor';
import { registration, StateRestore } from './state-restore';
import type { SupersededDefinitions } from './superseded-definitions';

/**
 * Announcements travel on the subscriber's connection, heartbeat replies on the client's: a
 * heartbeat may read a version whose announcement is still on its way. It counts as missed only
 * if it has not arrived this long after.
 */
const ANNOUNCEMENT_GRACE_MS = 1_000;
/** The most announced versions kept while they cannot be followed yet. */
const MAX_ANNOUNCED = 1_000;

/** Restores jobs the coordinator lost from the newest snapshot (SnapshotPersister), when snapshots are on. */
export interface LostStateRestorer {
  restoreLost(): Promise<void>;
}

/**
 * Keeps the mirror in step with the shared state: registers this replica's jobs once, reads the
 * state of all jobs (a full sync: at start, on reconnection, on a missed change or a new epoch)
 * or of the jobs an event names, re-creates what Redis lost, adopts this replica's orphaned
 * leases, and follows the announcements and heartbeats that say what changed elsewhere.
 */
export class MirrorSync {
  private registered = false;
  /**
   * The change version this replica has followed without a gap, in the epoch of the shared state
   * it knows: set by full syncs, moved on by each announcement that carries the next version.
   * A heartbeat that reads another version or epoch means a message was missed, or Redis lost its state.
   */
  private seen: { epoch: string; version: number } | null = null;
  /**
   * Versions announced since the latest full sync began: those that arrived while it read the
   * state (after its heartbeat read the version) are followed once it sets `seen`, rather than
   * read as a gap that costs the next heartbeat another full sync.
   */
  private readonly announced = new Set<number>();
  /** Full syncs queued or running: a heartbeat before the first one ends has nothing to add. */
  private fullSyncsPending = 0;
  private syncChain: Promise<void> = Promise.resolve();
  private changedNames = new Set<string>();
  private readonly restorer: StateRestore;
  /** Snapshots, when on: restored before the boot registration and before StateRestore re-creates lost jobs from code. */
  snapshots: LostStateRestorer | null = null;
  private firstSync!: () => void;
  /** Settles when the first full sync has ended. */
  readonly firstSynced = new Promise<void>((resolve) => (this.firstSync = resolve));

  constructor(
    private readonly ctx: OrchestratorContext,
    private readonly mirror: JobMirror,
    private readonly loop: DueLoop,
    private readonly runs: RunSupervisor,
    private readonly boot: BootTriggers,
    /** Claims that went unanswered: a snapshot (which lists this replica's leases) answers them. */
    private readonly inDoubt: ClaimsInDoubt,
    /** Definitions of this replica that a rolling deploy replaced: offered again when the live members change. */
    private readonly superseded: SupersededDefinitions,
  ) {
    this.restorer = new StateRestore(ctx.coordinator, ctx.options.instanceId, ctx.logger);
  }

  /** The coordinator's clock as this replica knows it: every due time is on it. */
  private get clock(): CoordinatorClock {
    return this.ctx.coordinator.clock;
  }

  /** Settles once the syncs queued so far have ended. */
  synced(): Promise<void> {
    return this.syncChain;
  }

  /** Reads the shared state of some jobs (or all) and re-arms; calls never overlap. */
  resync(names?: string[]): Promise<void> {
    if (names === undefined) this.fullSyncsPending++;
    const next = this.syncChain
      .then(() => this.synchronize(names))
      .catch((error) => this.ctx.report('sync', error))
      .finally(() => names === undefined && this.fullSyncsPending--);
    this.syncChain = next;
    return next;
  }

  private async synchronize(names?: string[]): Promise<void> {
    const { coordinator, options, registry } = this.ctx;
    if (!coordinator.isAvailable() || this.ctx.life.stopping) return;
    const full = names === undefined;
    // First, so that the first due times this replica computes (registration) are on Redis's clock.
    const heartbeat = full || !this.clock.known ? await this.ctx.cluster.heartbeat() : null;
    if (heartbeat) this.loop.setMembers();
    if (!this.registered) {
      // Jobs the coordinator lacks (a fresh or flushed Redis, a restarted embedded app) come back
      // from the newest snapshot first; the boot registration then finds them (the rolling-deploy
      // rule applies to a definition that changed since the snapshot).
      if (this.snapshots) await this.snapshots.restoreLost();
      // After the latest time Redis's clock can read, so never at or before a fire it has served.
      const jobs = registry.all().map((job) => registration(job, undefined, this.clock.latest()));
      const outcomes = await coordinator.register(jobs, 'boot', options.instanceId);
      this.superseded.note(outcomes);
      this.mirror.logRegistration(outcomes);
      this.registered = true;
    }
    if (full) await this.runs.flushUnreported();
    const wanted = (names ?? registry.names()).filter((name) => registry.has(name));
    const snapshotAt = this.clock.now();
    const asked = this.inDoubt.ask();
    let snapshot = await coordinator.snapshot(wanted, options.instanceId);
    // Redis lost state: look at every job at once, so what was lost is re-created (and logged) together.
    if (!full && snapshot.missing.length > 0) return this.synchronize();
    if (snapshot.missing.length > 0) {
      // Redis lost these jobs (restarted without persistence, or flushed): create them again
      // with what this replica knew, never with a due time that may have been served (StateRestore).
      // The newest snapshot first, when snapshots are on: StateRestore ('restore' mode) changes
      // nothing of the jobs it brought back, and re-creates the others.
      if (this.snapshots) await this.snapshots.restoreLost();
      await this.restorer.restore(snapshot.missing.map((name) => registry.get(name)!), this.mirror.known);
      const again = await coordinator.snapshot(snapshot.missing, options.instanceId);
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
    this.inDoubt.answered(wanted, asked);
    if (full) {
      const version = Number(heartbeat!.version);
      if (this.seen && this.seen.epoch !== heartbeat!.epoch) this.announced.clear();
      if (!this.seen || this.seen.epoch !== heartbeat!.epoch || this.seen.version < version) this.seen = { epoch: heartbeat!.epoch, version };
      this.followAnnounced();
      this.firstSync();
      if (!this.boot.wereSent) await this.boot.send();
    }
    this.loop.arm();
  }

  /** Renews membership; catches up with changes whose announcement this replica missed. */
  async beat(): Promise<void> {
    const { coordinator, life } = this.ctx;
    if (!coordinator.isAvailable() || life.stopping) return;
    try {
      const { version, members, epoch } = await this.ctx.cluster.heartbeat();
      this.setMembers(members);
      // A new epoch: Redis lost its state. A version not followed yet: a message may have been lost.
      if (!this.seen && this.fullSyncsPending > 0) return;
      if (!this.seen || this.seen.epoch !== epoch) return void (await this.resync());
      if (this.seen.version >= Number(version)) return;
      await new Promise((resolve) => setTimeout(resolve, ANNOUNCEMENT_GRACE_MS).unref());
      if (life.stopping) return;
      if (this.seen.epoch === epoch && this.seen.version < Number(version)) await this.resync();
    } catch (error) {
      this.ctx.report('sync', error);
    }
  }

  private setMembers(members: string[]): void {
    this.superseded.membersSeen(members);
    if (!this.loop.setMembers()) return;
    // Claim times depend on who is preferred: queue every fire again under the new set.
    this.loop.clear();
    this.mirror.queueAll();
    this.loop.disarm();
    this.loop.arm();
  }

  /** Moves `seen` over the announcements received without a gap after it; forgets the older ones. */
  private followAnnounced(): void {
    if (!this.seen) {
      // Before the first full sync: keep the latest only (a burst must not grow without bound).
      if (this.announced.size > MAX_ANNOUNCED) this.announced.clear();
      return;
    }
    while (this.announced.has(this.seen.version + 1)) this.seen.version++;
    for (const version of this.announced) if (version <= this.seen.version) this.announced.delete(version);
    // Versions beyond a gap wait for it to fill (or for the next full sync): bounded all the same.
    if (this.announced.size > MAX_ANNOUNCED) this.announced.clear();
  }

  onEvent(event: CoordinationEvent): void {
    if (this.ctx.life.stopping) return;
    if ((event.type === 'changed' || event.type === 'trigger') && event.version !== undefined) {
      this.announced.add(event.version);
      this.followAnnounced();
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
      event.names.filter((name) => this.ctx.registry.has(name)).forEach((name) => this.changedNames.add(name));
      if (first && this.changedNames.size > 0) {
        setImmediate(() => {
          const names = [...this.changedNames];
          this.changedNames.clear();
          void this.resync(names);
        });
      }
    }
  }
}
