import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleInit, Optional } from '@nestjs/common';
import type { Subscription } from 'rxjs';
import { Coordinator } from '../coordination/coordinator.interface';
import { InvalidSchedulerOptionError } from '../errors';
import { RESOLVED_SCHEDULER_OPTIONS } from '../scheduler.constants';
import type { ResolvedSchedulerOptions } from '../scheduler-options.resolver';
import { defineJob } from '../scheduling/job-definition';
import { JobRegistry } from '../scheduling/job.registry';
import { withDeadline } from '../scheduling/orchestrator-context';
import { SchedulerOrchestrator } from '../scheduling/scheduler.orchestrator';
import { FileSnapshotStore } from './file-snapshot.store';
import { decodeSnapshot, encodeSnapshot, Snapshot, SNAPSHOT_FORMAT } from './snapshot-format';
import { describeRestore, restoreSnapshot } from './snapshot-restore';
import type { SnapshotStore } from './snapshot-store.interface';
import {
  SNAPSHOT_DATABASE_STORE,
  SNAPSHOT_JOB_NAME,
  SNAPSHOT_READ_TIMEOUT_MS,
  SNAPSHOT_RETRY_MIN_MS,
  SNAPSHOT_TRIGGER_ID_TTL_MS,
} from './snapshot.constants';

/** Why a snapshot was written. */
/** Why a snapshot is written; `final`: at shutdown by the last live replica; `boot`: replaces a final one before runs start again. */
export type SnapshotReason = 'interval' | 'changes' | 'shutdown' | 'final' | 'boot' | 'manual' | 'retry';

/** The snapshot persister's state and counters, ready to be exported as metrics. */
export interface SnapshotStatus {
  /** False when snapshots are off (`snapshot: false`, or no store: neither `records` nor `file`). */
  enabled: boolean;
  /** Where snapshots go: `file "…"`, `table "dsched_snapshot"`; null when off. */
  store: string | null;
  /** Snapshots this replica wrote. */
  saves: number;
  /** Snapshots this replica failed to write (store unreachable, coordinator unreachable). */
  saveFailures: number;
  /** Snapshots not written because the coordinator had lost jobs the newest snapshot has (they are restored first). */
  savesSkipped: number;
  /** Reads of the newest snapshot that failed: store unreachable, or a snapshot this version cannot decode. */
  readFailures: number;
  /** Restores this replica made (one per loss it restored; replicas that found the jobs restored count none). */
  restores: number;
  /** Jobs this replica restored, over all its restores. */
  restoredJobs: number;
  /** When this replica last wrote a snapshot (the coordinator's clock when it was read), or null. */
  lastSavedAt: Date | null;
  /** The last save's error while saving fails; null once a save succeeds. */
  lastSaveError: string | null;
  /** The last read's error, or null. */
  lastReadError: string | null;
  /** This replica's last restore: when, from the snapshot written when, how many jobs. */
  lastRestore: { at: Date; snapshotWrittenAt: Date; jobs: number } | null;
}

/**
 * Writes versioned snapshots of every job's shared state, and restores the newest when the
 * coordinator has lost jobs. One replica of the cluster writes the periodic snapshot (the
 * built-in job `dsched.snapshot`, every `snapshot.every`); every replica asks for one (a trigger
 * with the same id from all of them, so it runs once) when the change version has moved by
 * `snapshot.maxChanges`; a replica that shuts down writes a last one. The restore runs inside
 * the orchestrator's synchronization, before the boot registration and before jobs lost at
 * runtime are re-created from code, so before any of them is claimed.
 */
@Injectable()
export class SnapshotPersister implements OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('DistributedScheduler');
  private store: SnapshotStore | null = null;
  private saving: Promise<boolean> | null = null;
  private failing = false;
  private retryTimer?: NodeJS.Timeout;
  private retryDelay = SNAPSHOT_RETRY_MIN_MS;
  private changesBucket: number | null = null;
  private subscription?: Subscription;
  private stopped = false;
  /** Job names of the newest snapshot this replica read or wrote: an export missing some means a loss not yet restored. */
  private knownNames: Set<string> | null = null;
  private readonly counters: Omit<SnapshotStatus, 'enabled' | 'store'> = {
    saves: 0,
    saveFailures: 0,
    savesSkipped: 0,
    readFailures: 0,
    restores: 0,
    restoredJobs: 0,
    lastSavedAt: null,
    lastSaveError: null,
    lastReadError: null,
    lastRestore: null,
  };

  constructor(
    @Inject(RESOLVED_SCHEDULER_OPTIONS) private readonly options: ResolvedSchedulerOptions,
    private readonly coordinator: Coordinator,
    private readonly registry: JobRegistry,
    private readonly orchestrator: SchedulerOrchestrator,
    @Optional() @Inject(SNAPSHOT_DATABASE_STORE) private readonly databaseStore?: SnapshotStore,
  ) {}

  onModuleInit(): void {
    const options = this.options.snapshot;
    if (!options) return;
    if (options.file !== null) this.store = new FileSnapshotStore(options.file, options.keep);
    else if (this.databaseStore) this.store = this.databaseStore;
    else if (options.explicit) {
      throw new InvalidSchedulerOptionError('snapshot.file', undefined, 'snapshots need a store: give a file path, or turn `records` on (the snapshots then go to its database)');
    }
    if (!this.store) return;
    this.registry.add({
      definition: defineJob({ name: SNAPSHOT_JOB_NAME, every: options.every, overlap: 'skip', retry: { attempts: 1 } }, SNAPSHOT_JOB_NAME),
      target: 'SnapshotPersister.save',
      handler: () => this.save('interval'),
    });
    this.orchestrator.useSnapshots(this);
  }

  onApplicationBootstrap(): void {
    if (!this.store) return;
    const maxChanges = this.options.snapshot!.maxChanges;
    this.subscription = this.coordinator.events$.subscribe((event) => {
      if ((event.type !== 'changed' && event.type !== 'trigger') || event.version === undefined) return;
      const bucket = Math.floor(event.version / maxChanges);
      if (this.changesBucket === null || bucket < this.changesBucket) {
        // The first version seen, or a new life of the coordinator's keys: count from here.
        this.changesBucket = bucket;
        return;
      }
      if (bucket === this.changesBucket) return;
      this.changesBucket = bucket;
      // Every replica that sees the version cross the line asks with the same id: one snapshot runs.
      if (this.orchestrator.isRunning && this.coordinator.isAvailable()) {
        this.coordinator.requestTrigger(SNAPSHOT_JOB_NAME, 'EVENT', `changes:${bucket}`, SNAPSHOT_TRIGGER_ID_TTL_MS).catch(() => undefined);
      }
    });
  }

  /** Once the scheduler has stopped (its runs drained), a last snapshot from this replica, if the coordinator answers. */
  async beforeApplicationShutdown(): Promise<void> {
    this.subscription?.unsubscribe();
    clearTimeout(this.retryTimer);
    if (!this.store) return;
    await this.orchestrator.stop();
    this.stopped = true;
    // Final when this replica left as the last live one: nothing ran after it (restoreLost).
    const reason = this.orchestrator.leftLast ? 'final' : 'shutdown';
    if (this.coordinator.isAvailable()) await withDeadline(this.save(reason), Date.now() + Math.max(this.options.shutdownTimeout, SNAPSHOT_READ_TIMEOUT_MS));
  }

  status(): SnapshotStatus {
    return { enabled: this.store !== null, store: this.store?.description ?? null, ...this.counters };
  }

  /**
   * Writes a snapshot now, from this replica. Never throws: a failure is counted, logged once per
   * episode, and tried again (1 s, doubling up to `every`). Resolves true if it was written.
   */
  save(reason: SnapshotReason = 'manual'): Promise<boolean> {
    if (!this.store) return Promise.resolve(false);
    if (this.saving) return this.saving;
    this.saving = this.write(reason).finally(() => (this.saving = null));
    return this.saving;
  }

  private async write(reason: SnapshotReason): Promise<boolean> {
    const store = this.store!;
    try {
      const state = await this.coordinator.exportState();
      if (this.knownNames === null) {
        const newest = await this.readNewest().catch(() => null);
        this.knownNames = new Set(newest?.jobs.map((job) => job.name) ?? []);
      }
      const present = new Set([...state.jobs.map((job) => job.name), ...state.corrupt.map((job) => job.name)]);
      const lost = [...this.knownNames].filter((name) => !present.has(name));
      if (lost.length > 0) {
        // The coordinator lost jobs that the newest snapshot holds, and they are not restored yet:
        // writing now would replace the snapshot that restores them.
        this.counters.savesSkipped++;
        this.logger.warn(
          `Snapshot not written (${reason}): the coordinator has lost ${lost.length} job(s) the newest snapshot in ${store.description} holds ` +
            `(${lost.slice(0, 5).map((name) => `"${name}"`).join(', ')}${lost.length > 5 ? ', …' : ''}); they are restored from it first.`,
        );
        return false;
      }
      const snapshot = {
        writtenAt: state.now,
        writtenBy: this.options.instanceId,
        prefix: this.options.keyPrefix,
        version: state.version,
        epoch: state.epoch,
        final: reason === 'final',
        jobs: state.jobs,
      };
      await store.save(encodeSnapshot(snapshot), { prefix: snapshot.prefix, format: SNAPSHOT_FORMAT, writtenAt: state.now, writtenBy: snapshot.writtenBy, jobCount: state.jobs.length });
      this.knownNames = present;
      this.counters.saves++;
      this.counters.lastSavedAt = new Date(state.now);
      this.counters.lastSaveError = null;
      if (this.failing) this.logger.log(`Snapshots are written again to ${store.description}.`);
      this.failing = false;
      this.retryDelay = SNAPSHOT_RETRY_MIN_MS;
      return true;
    } catch (error) {
      this.counters.saveFailures++;
      const message = error instanceof Error ? error.message : String(error);
      this.counters.lastSaveError = message;
      if (!this.failing) {
        this.logger.warn(`Writing a snapshot (${reason}) to ${store.description} failed: ${message}. Counted; tried again from ${this.options.instanceId} with backoff.`);
      }
      this.failing = true;
      this.scheduleRetry();
      return false;
    }
  }

  private scheduleRetry(): void {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    const delay = this.retryDelay;
    this.retryDelay = Math.min(this.retryDelay * 2, this.options.snapshot!.every);
    this.retryTimer = setTimeout(() => {
      if (!this.stopped && this.orchestrator.isRunning) void this.save('retry');
    }, delay).unref();
  }

  /** The newest snapshot of this prefix, decoded; null if there is none. Throws what the store or the decoder throws. */
  private async readNewest(): Promise<Snapshot | null> {
    const store = this.store!;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer from ${store.description} within ${SNAPSHOT_READ_TIMEOUT_MS} ms`)), SNAPSHOT_READ_TIMEOUT_MS);
    });
    try {
      const stored = await Promise.race([store.readNewest(this.options.keyPrefix), timeout]);
      if (!stored) return null;
      const snapshot = decodeSnapshot(stored.text, stored.location);
      if (snapshot.prefix !== this.options.keyPrefix) {
        throw new Error(`the snapshot in ${stored.location} holds the jobs of key prefix "${snapshot.prefix}", not "${this.options.keyPrefix}"`);
      }
      return snapshot;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Restores the newest snapshot's jobs that the coordinator does not have (called by the
   * orchestrator's synchronization: at the first one, before the boot registration, and whenever
   * jobs are found missing). A snapshot that cannot be read is counted and logged, and the jobs
   * start from their code; a coordinator error propagates (the synchronization is retried).
   */
  async restoreLost(): Promise<void> {
    if (!this.store) return;
    let snapshot: Snapshot | null;
    try {
      snapshot = await this.readNewest();
    } catch (error) {
      this.counters.readFailures++;
      const message = error instanceof Error ? error.message : String(error);
      this.counters.lastReadError = message;
      this.logger.error(`Reading the newest snapshot failed: ${message}. Jobs the coordinator lacks start from their code.`);
      return;
    }
    if (!snapshot) return;
    this.knownNames ??= new Set(snapshot.jobs.map((job) => job.name));
    const restored = await restoreSnapshot(this.coordinator, this.options.instanceId, snapshot);
    if (restored.length > 0) {
      this.counters.restores++;
      this.counters.restoredJobs += restored.length;
      this.counters.lastRestore = { at: new Date(this.coordinator.clock.now()), snapshotWrittenAt: new Date(snapshot.writtenAt), jobs: restored.length };
      this.logger.warn(describeRestore(restored, snapshot, this.store.description));
    }
    // Runs are about to start again: the final snapshot no longer says all that ran. Replace it
    // before the first claim, so a later loss restores from one that does not claim to.
    // Bounded: a database that does not answer must not hold the scheduler (the save is retried).
    if (snapshot.final) await withDeadline(this.save('boot'), Date.now() + SNAPSHOT_READ_TIMEOUT_MS);
  }
}
