import { parseTaskTriggerId } from '../dispatch/task-trigger-id';
import { parseRetryId } from '../retry/retry-id';
import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Observable } from 'rxjs';
import { Coordinator, JobRecord, MAX_PENDING_TRIGGERS, RescheduleRequest } from '../coordination/coordinator.interface';
import { ContinuousJobError, CoordinatorUnavailableError, InvalidJobOptionError, JobLockedError, TooManyTriggersError, UnknownJobError } from '../errors';
import { RESOLVED_SCHEDULER_OPTIONS } from '../scheduler.constants';
import type { ResolvedSchedulerOptions } from '../scheduler-options.resolver';
import { auditTime, ControlAudit } from './control-audit';
import { LastCheckpoint, toLastCheckpoint } from '../checkpoint/checkpoint.interface';
import { parseDuration } from './duration';
import type { JobDescription, ScheduleUpdate } from './job-description.interface';
import { defineSchedule } from './job-definition';
import { NextFire, Schedule } from './schedule';
import { mergeSchedule } from './schedule-update';
import type { SchedulerErrorEvent } from './scheduler-error-event.interface';
import { JobRegistry } from './job.registry';
import { SchedulerOrchestrator } from './scheduler.orchestrator';
import type { TriggerReceipt } from './trigger-receipt.interface';

/** How long a manual trigger's id is remembered, so a request resent after a reconnection runs once. */
const TRIGGER_ID_TTL_MS = 10 * 60_000;

/** How often a change computed from a schedule that changed meanwhile is tried again. */
const MAX_STALE_RETRIES = 5;

/** The most due times `preview` computes: more would hold the event loop, and every job of the replica with it. */
export const MAX_PREVIEW_COUNT = 1_000;

const MAX_TRIGGER_ID_LENGTH = 200;

/**
 * Runtime control of the jobs, from any replica and for the whole cluster: every call acts on
 * the coordinator, and every replica follows. Each control that changes something is logged
 * once, by this replica, with the job, the change and this instance (`ControlAudit`).
 */
@Injectable()
export class JobScheduler {
  private readonly coordinator: Coordinator;
  private readonly audit: ControlAudit;

  constructor(
    @Inject(RESOLVED_SCHEDULER_OPTIONS) private readonly options: ResolvedSchedulerOptions,
    coordinator: Coordinator,
    private readonly orchestrator: SchedulerOrchestrator,
    private readonly registry: JobRegistry,
  ) {
    this.coordinator = explainUnavailability(coordinator);
    this.audit = new ControlAudit(options.instanceId);
  }

  /** `redis` when replicas coordinate on Redis, `embedded` for a single process. */
  get mode(): 'redis' | 'embedded' {
    return this.coordinator.kind;
  }

  get instanceId(): string {
    return this.options.instanceId;
  }

  /** Errors of the background loop and of handlers; they are logged as well and never thrown. */
  get errors$(): Observable<SchedulerErrorEvent> {
    return this.orchestrator.errors$;
  }

  /** Starts the loop when `autoStart` is false. */
  start(): Promise<void> {
    return this.orchestrator.start();
  }

  /**
   * Runs the job now on one replica. For a scheduled job the period restarts from this run, if
   * it runs: a trigger skipped (locked, or running under `'skip'`) or queued leaves the due time alone.
   * The run obeys the job's `overlap` policy and manual lock; it also runs a paused job.
   *
   * Answers with a receipt: `accepted` (one replica will claim it), or `skipped` with the reason
   * when the job is locked or (overlap `'skip'`) running. Give `id` to make a retried request
   * safe: the same id within 10 minutes gets the same answer and runs at most once.
   * Throws `TooManyTriggersError` when the job already has `MAX_PENDING_TRIGGERS` pending, and
   * `ContinuousJobError` for a continuous job (it runs for as long as its replicas are chosen).
   */
  async trigger(name: string, options: { id?: string } = {}): Promise<TriggerReceipt> {
    if (this.registry.get(name)?.definition.continuous) throw new ContinuousJobError(name, 'trigger()');
    const id = options.id ?? randomUUID();
    if (typeof id !== 'string' || id === '' || id.length > MAX_TRIGGER_ID_LENGTH || /[\r\n]/.test(id)) {
      throw new InvalidJobOptionError(name, 'id', id, `expected a non-empty string of at most ${MAX_TRIGGER_ID_LENGTH} characters on one line`);
    }
    // The coordinator reads a trigger id of this form as a pending retry (retry-id.ts).
    if (parseRetryId(id)) throw new InvalidJobOptionError(name, 'id', id, "an id of the form 'retry:<n>:<time>:<token>:' is the library's own (a pending retry)");
    if (parseTaskTriggerId(id) !== null) throw new InvalidJobOptionError(name, 'id', id, "an id of the form 'task:<n>' is the library's own (a dispatched task)");
    // The trigger id is the caller's (10 minutes); the request id guards this call against a resend.
    const outcome = await this.coordinator.requestTrigger(name, 'MANUAL', id, TRIGGER_ID_TTL_MS, randomUUID());
    switch (outcome.status) {
      case 'unknown':
        throw new UnknownJobError(name);
      case 'full':
        throw new TooManyTriggersError(name, outcome.pending, MAX_PENDING_TRIGGERS);
      case 'accepted':
        this.audit.record(name, `triggered, trigger ${id} accepted`);
        return { id, job: name, status: 'accepted', requestedAt: new Date(outcome.requestedAt) };
      case 'skipped':
        this.audit.record(
          name,
          `triggered, trigger ${id} skipped: ` +
            (outcome.reason === 'locked' ? `the job is locked by "${outcome.holder}"` : `a run is still going on instance "${outcome.holder}" (overlap: 'skip')`),
        );
        return { id, job: name, status: 'skipped', reason: outcome.reason, holder: outcome.holder, requestedAt: new Date(outcome.requestedAt) };
    }
  }

  /**
   * Stops scheduling the job on every replica until `resume`. A running run goes on. A pause
   * always applies, and a resume computed before it (late, or resent by the client) is refused.
   */
  async pause(name: string): Promise<void> {
    if (!(await this.coordinator.pause(name, randomUUID()))) throw new UnknownJobError(name);
    this.audit.record(name, 'paused');
  }

  /**
   * Schedules the job again on every replica, its next fire computed from now. A job that is not
   * paused is left as it is. The resume applies only to the revision it read: if the job was
   * paused, resumed or changed meanwhile, it is refused (logged as a warning), so a resume can
   * never undo a pause made after it was asked for.
   */
  async resume(name: string): Promise<void> {
    const applied = await this.reschedule(
      name,
      (record, schedule) => (record.paused ? { rev: record.rev, resume: true, next: schedule ? this.nextFire(schedule, record) : null } : null),
      false,
    );
    if (applied === 'stale') this.audit.refused(name, 'resume refused: the job was paused, resumed or changed since this resume read it; resume it again if it should run');
    else if (applied) this.audit.record(name, `resumed; next run at ${auditTime(applied.request.next?.due)}`);
  }

  /** Moves the next fire to now + period (for a cron job, its next time after now). */
  async reset(name: string): Promise<void> {
    const applied = await this.reschedule(name, (record, schedule) => ({ rev: record.rev, next: schedule ? this.nextFire(schedule, record) : null }));
    if (applied && applied !== 'stale') this.audit.record(name, `reset; next run at ${auditTime(applied.record.paused ? null : applied.request.next?.due)}`);
  }

  /**
   * Puts a new schedule in force on every replica. It is kept in Redis, so it survives restarts
   * of the replicas, until a replica starts with a changed schedule of the job in code.
   * Fields not given keep their value in force: `{ every }` keeps the jitter, `{ cron }` keeps
   * the time zone of a cron schedule, `{ jitter }` alone changes only the jitter.
   */
  async updateSchedule(name: string, update: ScheduleUpdate): Promise<void> {
    const applied = await this.reschedule(name, (record) => {
      const spec = defineSchedule(name, mergeSchedule(name, record.spec, update), this.options.bounds)!;
      return { rev: record.rev, spec, next: this.nextFire(new Schedule(spec), record) };
    });
    if (applied && applied !== 'stale') {
      const { record, request } = applied;
      this.audit.record(
        name,
        `schedule changed from ${JSON.stringify(record.spec)} to ${JSON.stringify(request.spec)}; next run at ${auditTime(record.paused ? null : request.next?.due)}`,
      );
    }
  }

  /**
   * Holds the job's lock so no replica runs it: fires due meanwhile are skipped. Fails with
   * `JobLockedError` while a run holds it. Without `ttl`, it holds until `unlock`.
   */
  async lock(name: string, options: { ttl?: number | string; holder?: string } = {}): Promise<void> {
    const ttl = options.ttl === undefined ? null : parseDuration(options.ttl);
    if (ttl === undefined) throw new InvalidJobOptionError(name, 'ttl', options.ttl, 'expected a positive duration');
    const holder = options.holder ?? this.options.instanceId;
    const outcome = await this.coordinator.lock(name, holder, ttl, randomUUID());
    if (outcome === 'unknown') throw new UnknownJobError(name);
    if (outcome.status === 'refused') throw new JobLockedError(name, outcome.holder, outcome.reason);
    this.audit.record(name, `locked by "${holder}" ${ttl === null ? 'until unlocked' : `for ${ttl} ms`}`);
  }

  /** Releases the job's manual lock, whoever took it. */
  async unlock(name: string): Promise<void> {
    const { locked } = await this.record(name);
    if (!locked) return;
    // Naming the holder seen makes a late or resent unlock unable to release a newer lock.
    if (!(await this.coordinator.unlock(name, locked.by, randomUUID()))) throw new UnknownJobError(name);
    this.audit.record(name, `unlocked (it was locked by "${locked.by}")`);
  }

  async describe(name: string): Promise<JobDescription> {
    return toDescription(await this.record(name));
  }

  /** Every job registered under this key prefix, by any replica. */
  async list(): Promise<JobDescription[]> {
    return (await this.coordinator.describe()).map(toDescription);
  }

  /**
   * The next `count` due times (without jitter, which is drawn as each fire is claimed), at most
   * `MAX_PREVIEW_COUNT` (1,000); a count beyond it, negative or not whole throws a `RangeError`.
   */
  async preview(name: string, count: number): Promise<Date[]> {
    if (!Number.isInteger(count) || count < 0 || count > MAX_PREVIEW_COUNT) {
      throw new RangeError(`Job "${name}": preview count ${String(count)} is out of range: expected a whole number from 0 to ${MAX_PREVIEW_COUNT}.`);
    }
    const record = await this.record(name);
    if (!record.spec || count === 0) return [];
    const schedule = new Schedule(record.spec);
    const start = record.base ?? schedule.nextBase(null, this.coordinator.clock.now());
    return [start, ...schedule.preview(count - 1, start)].map((at) => new Date(at));
  }

  /**
   * The job's last written checkpoint (what its next run will find in `ctx.lastCheckpoint`), or
   * null if it has none. Updates a running run has buffered and not yet written are not in it.
   */
  async checkpoint(name: string): Promise<LastCheckpoint | null> {
    const stored = await this.coordinator.readCheckpoint(name);
    if (stored === 'unknown') throw new UnknownJobError(name);
    return stored && toLastCheckpoint(stored);
  }

  /**
   * Deletes the job's checkpoint: its next run starts with `ctx.lastCheckpoint` null. The runs
   * older than the job's latest one can no longer write it (it stays fenced at the latest token);
   * a run of that latest token still going can, so stop it first if it must not.
   */
  async clearCheckpoint(name: string): Promise<void> {
    if (!(await this.coordinator.clearCheckpoint(name))) throw new UnknownJobError(name);
    this.audit.record(name, 'checkpoint cleared');
  }

  /** Round trip to the coordinator, in ms. */
  async ping(): Promise<number> {
    const started = performance.now();
    await this.coordinator.ping();
    return performance.now() - started;
  }

  private async record(name: string): Promise<JobRecord> {
    const [record] = await this.coordinator.describe([name]);
    if (!record) throw new UnknownJobError(name);
    return record;
  }

  /**
   * The next fire from now on Redis's clock (read with the record just now), never at or before
   * the job's latest served due time: a process whose clock is behind would otherwise set a fire
   * that already ran, and it would run again (the coordinator refuses one: `stale`).
   */
  private nextFire(schedule: Schedule, record: JobRecord): NextFire {
    return schedule.next(null, Math.max(this.coordinator.clock.latest(), record.served ?? -Infinity));
  }

  /**
   * Applies a change computed from the job's current revision; `change` returns null for no
   * change. Resolves with what was applied, against which record, or null if nothing was; with
   * `retryStale` false, 'stale' if the job changed since it was read. Each attempt is one request
   * id, so a resent attempt changes nothing more.
   */
  private async reschedule(
    name: string,
    change: (record: JobRecord, schedule: Schedule | null) => Omit<RescheduleRequest, 'requestId'> | null,
    retryStale = true,
  ): Promise<{ record: JobRecord; request: RescheduleRequest } | 'stale' | null> {
    for (let attempt = 0; attempt < MAX_STALE_RETRIES; attempt++) {
      const record = await this.record(name);
      const computed = change(record, record.spec ? new Schedule(record.spec) : null);
      if (computed === null) return null;
      const request: RescheduleRequest = { ...computed, requestId: randomUUID() };
      const outcome = await this.coordinator.reschedule(name, request);
      if (outcome === 'ok') return { record, request };
      if (outcome === 'stale' && !retryStale) return 'stale';
      if (outcome === 'unknown') throw new UnknownJobError(name);
    }
    throw new Error(`Job "${name}": its schedule kept changing while it was being updated; try again.`);
  }
}

/**
 * Wraps the coordinator so that a call failing while it is unreachable rejects with
 * `CoordinatorUnavailableError`, which says where it tried, instead of a socket error.
 */
function explainUnavailability(coordinator: Coordinator): Coordinator {
  return new Proxy(coordinator, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const result = value.apply(target, args);
        if (!(result instanceof Promise)) return result;
        return result.catch((error: unknown) => {
          if (!target.isUnreachableError(error)) throw error;
          throw new CoordinatorUnavailableError(target.describeTarget(), error);
        });
      };
    },
  });
}

function toDescription(record: JobRecord): JobDescription {
  const date = (ms: number | null) => (ms === null ? null : new Date(ms));
  return {
    name: record.name,
    schedule: record.spec,
    scheduleOverridden: JSON.stringify(record.spec) !== JSON.stringify(record.definition.spec),
    overlap: record.overlap,
    paused: record.paused,
    nextRunAt: date(record.due),
    running: record.running.map((run) => ({
      fencingToken: run.fencingToken,
      instanceId: run.instanceId,
      trigger: run.trigger,
      scheduledAt: new Date(run.scheduledAt),
      startedAt: new Date(run.startedAt),
      catchUp: run.catchUp === true,
      attempt: run.attempt ?? 1,
    })),
    locked: record.locked && { by: record.locked.by, until: date(record.locked.until) },
    pendingTriggers: record.pendingTriggers,
    pendingRetries: record.pendingRetries.map((retry) => ({
      attempt: retry.attempt,
      scheduledAt: new Date(retry.scheduledAt),
      notBefore: new Date(retry.notBefore),
      trigger: retry.trigger,
      firstFencingToken: retry.firstFencingToken,
      taskId: retry.taskId ?? null,
    })),
    lastRun: record.lastRun && {
      ...record.lastRun,
      scheduledAt: new Date(record.lastRun.scheduledAt),
      startedAt: new Date(record.lastRun.startedAt),
      finishedAt: date(record.lastRun.finishedAt),
      catchUp: record.lastRun.catchUp === true,
      attempt: record.lastRun.attempt ?? 1,
    },
    skippedLate: record.skippedLate,
    skippedMissed: record.skippedMissed,
    catchUpRuns: record.catchUpRuns,
    recoveredRuns: record.recoveredRuns,
    abandonedRuns: record.abandonedRuns,
    continuous: record.definition.continuous
      ? {
          max: record.definition.continuous.max,
          holders: record.running.map((run) => ({ instanceId: run.instanceId, fencingToken: run.fencingToken, since: new Date(run.startedAt) })),
        }
      : null,
    definedBy: record.definedBy,
    definedAt: new Date(record.definedAt),
  };
}

