import { BehaviorSubject, Observable, Subject } from 'rxjs';
import type { JobTrigger } from '../../scheduling/job-context.interface';
import type { SharedJobDefinition } from '../../scheduling/job-definition';
import {
  ClaimRequest,
  ClaimResult,
  CoordinationEvent,
  Coordinator,
  ExportedJob,
  ExportedState,
  JobRestore,
  JobRecord,
  JobRegistration,
  JobsSnapshot,
  JobState,
  LastRun,
  LockOutcome,
  MAX_PENDING_TRIGGERS,
  MAX_SUPERSEDED_DEFINITIONS,
  OwnLease,
  PENDING_TRIGGERS_TTL_MS,
  PendingRetry,
  REQUEST_ID_TTL_MS,
  RegistrationMode,
  RegistrationOutcome,
  RescheduleRequest,
  RestoreOutcome,
  RunLease,
  RunReport,
  SlotOutcome,
  TriggerOutcome,
  ExpiredLeases,
  RecoveryOutcome,
  RecoveryRequest,
  RetryMatch,
  TaskDispatchRequest,
  TaskStopOutcome,
} from '../coordinator.interface';
import { CoordinatorClock } from '../../scheduling/coordinator-clock';
import { parseRetryId, RetryId, retryId } from '../../retry/retry-id';
import { parseTaskTriggerId, taskOfTrigger, taskTriggerId } from '../../dispatch/task-trigger-id';
import type { CheckpointSaveOutcome, StoredCheckpoint } from '../../checkpoint/checkpoint.interface';
import { DEPARTURES_KEPT_MS } from '../../cluster/cluster.constants';
import { NO_REPORT } from '../../cluster/member-codec';
import type { DepartureReason, HeartbeatReply, MemberDeparture, MemberRecord, MemberReport, MemberRun, MembersReading } from '../../cluster/member-record.interface';

interface StoredJob extends JobState {
  definition: SharedJobDefinition;
  definitionHash: string;
  definedBy: string;
  definedAt: number;
  fence: number;
  locked: { by: string; until: number | null } | null;
  queued: boolean;
  lastRun: LastRun | null;
  /**
   * Live leases; `ref` names the fire a claim took (its due time or trigger member), as claim.lua's
   * `r`; `first`, a retry's first attempt's token, as its `o`.
   */
  leases: Map<number, StoredLease>;
  skippedLate: number;
  /** As `missedSkips`, `catchUps` and `catchUpTo` in Redis. */
  skippedMissed: number;
  catchUpRuns: number;
  catchUpTo: number | null;
  /** The latest due time claimed (as `served` in Redis): no due time at or before it is set again. */
  served: number | null;
  /** Hashes of the definitions a boot replaced, oldest first (as `superseded` in Redis). */
  superseded: string[];
}

type StoredLease = RunLease & { ref?: string; first?: number };

interface StoredTrigger {
  name: string;
  id: string;
  trigger: JobTrigger;
  requestedAt: number;
}

/**
 * The coordinator of a single process: the same contract as `RedisCoordinator`, kept in memory.
 * Each method runs to completion without awaiting, which makes it as atomic as a Lua script.
 */
export class EmbeddedCoordinator extends Coordinator {
  readonly kind = 'embedded' as const;
  /** The coordinator is this process: its clock is the process's own. */
  readonly clock = new CoordinatorClock(true);
  private readonly jobs = new Map<string, StoredJob>();
  /** Pending triggers per job (as Redis keeps one set per job): member -> trigger. */
  private readonly triggers = new Map<string, Map<string, StoredTrigger>>();
  /** Until when each job's pending triggers are kept unclaimed (as the TTL of Redis's set). */
  private readonly triggersKeptUntil = new Map<string, number>();
  /** Ids of trigger requests that must not run twice: their answer, and until when it is remembered. */
  private readonly requestIds = new Map<string, { until: number; outcome: TriggerOutcome }>();
  /** Answers of controls by request id (as the request keys of the Redis scripts). */
  private readonly answers = new Map<string, { until: number; answer: unknown }>();
  /** Live members: instance id -> last heartbeat (as Redis's replicas set). */
  private readonly members = new Map<string, number>();
  /** What each live member is, and when its session lapses (as Redis's sessions, members and member-runs keys). */
  private readonly sessions = new Map<string, { expiresAt: number; record: MemberRecord; runs: MemberRun[] }>();
  /** Recent departures (as Redis's departed set). */
  private departures: MemberDeparture[] = [];
  /** Per job, which instance declares which definition hash (as Redis's declarers hashes). */
  private readonly declared = new Map<string, Map<string, string>>();
  /** Per job, its checkpoint (if not cleared) and its fence (as Redis's checkpoint hashes). */
  private readonly checkpoints = new Map<string, { stored: StoredCheckpoint | null; floor: number }>();
  private changeCount = 0;
  private readonly events = new Subject<CoordinationEvent>();
  private readonly available = new BehaviorSubject(false);

  readonly events$: Observable<CoordinationEvent> = this.events.asObservable();
  readonly available$: Observable<boolean> = this.available.asObservable();

  /** @param pendingTriggersTtl how long a job's pending triggers are kept unclaimed; each accepted trigger starts it over. */
  constructor(private readonly pendingTriggersTtl: number = PENDING_TRIGGERS_TTL_MS) {
    super();
  }

  describeTarget(): string {
    return 'the embedded coordinator (this process only)';
  }

  isAvailable(): boolean {
    return this.available.value;
  }

  async connect(): Promise<void> {
    this.available.next(true);
  }

  async close(): Promise<void> {
    this.available.next(false);
    this.events.complete();
    this.available.complete();
  }

  async ping(): Promise<void> {}

  async register(jobs: JobRegistration[], mode: RegistrationMode, instanceId: string): Promise<RegistrationOutcome[]> {
    const now = Date.now();
    const changed: string[] = [];
    const outcomes = jobs.map((registration): RegistrationOutcome => {
      const { name, definition, definitionHash, first } = registration;
      const runtime = registration.runtime ?? definition;
      const existing = this.jobs.get(name);
      if (!existing && mode === 'offer') return { name, outcome: 'missing' };
      // As register.lua: who declares what, without the members gone; the caller declares its own below.
      const declarers = this.declared.get(name) ?? new Map<string, string>();
      this.declared.set(name, declarers);
      for (const who of declarers.keys()) if (who !== instanceId && !this.members.has(who)) declarers.delete(who);
      const declaredLive = [...declarers].some(([who, hash]) => who !== instanceId && hash === existing?.definitionHash);
      declarers.set(instanceId, definitionHash);
      const setDue = (job: StoredJob) => {
        // As register.lua: a first fire not after the served one would run it again; the due time set stays.
        if (first !== null && first.due <= (servedDue(job) ?? -Infinity)) return;
        Object.assign(job, { base: !job.paused && first ? first.base : null, due: !job.paused && first ? first.due : null });
      };
      const define = (job: StoredJob) => {
        Object.assign(job, { definition, definitionHash, definedBy: instanceId, definedAt: now, overlap: definition.overlap });
        changed.push(name);
      };
      if (!existing) {
        // As register.lua: a due time that has come may have been served before the loss.
        if (mode === 'restore' && first && !runtime.paused && first.due <= now) return { name, outcome: 'passed', now };
        const job = { name, rev: 1, fence: 0, locked: null, queued: false, lastRun: null, leases: new Map(), skippedLate: 0, skippedMissed: 0, catchUpRuns: 0, catchUpTo: null, served: null, superseded: [] } as unknown as StoredJob;
        define(job);
        Object.assign(job, { spec: runtime.spec, paused: runtime.paused });
        setDue(job);
        this.jobs.set(name, job);
        return { name, outcome: 'created' };
      }
      if (existing.definitionHash === definitionHash) return { name, outcome: 'unchanged' };
      const other = existing.definition;
      const otherBy = existing.definedBy;
      if (mode === 'restore') return { name, outcome: 'differs', other, otherBy };
      // A definition a boot replaced does not come back while a live replica declares the one in force.
      const superseded = existing.superseded.includes(definitionHash);
      if (declaredLive && superseded) return { name, outcome: 'superseded', other, otherBy };
      // As register.lua: an offer replaces only a definition still remembered as superseded.
      if (mode === 'offer' && !superseded) return { name, outcome: 'differs', other, otherBy };
      const replacedHash = existing.definitionHash;
      existing.superseded = [...existing.superseded.filter((hash) => hash !== replacedHash && hash !== definitionHash), replacedHash].slice(
        -MAX_SUPERSEDED_DEFINITIONS,
      );
      // Only what changed in the code is applied: an overlap change keeps the due time and a runtime pause.
      const specChanged = JSON.stringify(other.spec) !== JSON.stringify(definition.spec);
      const paused = other.paused !== definition.paused ? definition.paused : existing.paused;
      define(existing);
      if (specChanged || paused !== existing.paused) {
        existing.rev += 1;
        if (specChanged) existing.spec = definition.spec;
        existing.paused = paused;
        setDue(existing);
      }
      return { name, outcome: 'replaced', other, otherBy };
    });
    this.announceChanged(changed);
    return outcomes;
  }

  async snapshot(names: string[], instanceId: string): Promise<JobsSnapshot> {
    const now = Date.now();
    const states: JobState[] = [];
    const missing: string[] = [];
    const ownLeases: OwnLease[] = [];
    for (const name of names) {
      const job = this.jobs.get(name);
      if (!job) {
        missing.push(name);
        continue;
      }
      states.push(toState(job));
      for (const lease of job.leases.values()) {
        if (lease.instanceId === instanceId && lease.expiresAt > now) {
          const { fencingToken, scheduledAt, startedAt, expiresAt, trigger, taskId } = lease;
          const retry = lease.attempt !== undefined ? { attempt: lease.attempt, firstFencingToken: lease.first } : {};
          ownLeases.push({ name, fencingToken, scheduledAt, startedAt, expiresAt, trigger, taskId, ...(lease.catchUp ? { catchUp: true } : {}), ...retry });
        }
      }
    }
    const triggers = states.flatMap(({ name }) => [...this.pendingOf(name)].map(([member, trigger]) => ({ member, ...trigger })));
    return { states, missing, corrupt: [], triggers, ownLeases };
  }

  /** As heartbeat.lua: one process has one member, but the contract (declared definitions, membership) counts members. */
  async heartbeat(instanceId: string, sessionTtl: number, leave = false, report: MemberReport = NO_REPORT): Promise<HeartbeatReply> {
    const now = Date.now();
    let changed = false;
    if (leave) {
      changed = this.depart(instanceId, 'shutdown', now);
    } else {
      const before = this.sessions.get(instanceId);
      changed = !this.members.has(instanceId);
      this.members.set(instanceId, now);
      this.sessions.set(instanceId, {
        expiresAt: now + sessionTtl,
        record: { id: instanceId, labels: { ...report.labels }, worker: report.worker, joinedAt: !changed && before ? before.record.joinedAt : now, beatAt: now, sessionTtl, runCount: report.runs.length },
        runs: report.runs.map(({ name, fencingToken }) => ({ name, fencingToken })),
      });
    }
    for (const [who, session] of this.sessions) if (session.expiresAt <= now) changed = this.depart(who, 'expired', now) || changed;
    this.departures = this.departures.filter((departure) => departure.at > now - DEPARTURES_KEPT_MS);
    if (changed) this.emit({ type: 'members' });
    return {
      version: String(this.changeCount),
      members: [...this.members.keys()],
      epoch: 'embedded',
      now,
      live: [...this.sessions.values()].map((session) => ({ ...session.record, labels: { ...session.record.labels } })),
      departed: [...this.departures],
    };
  }

  async readMembers(): Promise<MembersReading> {
    const now = Date.now();
    const members = [...this.sessions.values()]
      .filter((session) => session.expiresAt > now)
      .map((session) => ({ ...session.record, labels: { ...session.record.labels }, runs: [...session.runs] }));
    return { now, members };
  }

  private depart(who: string, reason: DepartureReason, now: number): boolean {
    this.sessions.delete(who);
    if (!this.members.delete(who)) return false;
    this.departures.push({ id: who, at: now, reason });
    return true;
  }

  async claim(requests: ClaimRequest[], instanceId: string, lockTtl: number): Promise<ClaimResult[]> {
    const now = Date.now();
    return requests.map((request) => this.claimOne(request, instanceId, lockTtl, now));
  }

  private claimOne(request: ClaimRequest, instanceId: string, lockTtl: number, now: number): ClaimResult {
    const job = this.jobs.get(request.name);
    if (!job) return { status: 'missing' };
    let scheduledAt: number;
    let trigger: JobTrigger;
    // As claim.lua: a pending retry's attempt, first token and task.
    let retry: RetryId | null = null;
    const ref = request.member ?? String(request.due);
    // As claim.lua: the replica's plan for missed due times, checked against what is known here.
    const plan = request.member === undefined ? request.missed : undefined;
    let through: number | null = null;
    if (request.member === undefined) {
      if (job.due !== request.due) return this.alreadyWon(job, instanceId, ref, now) ?? { status: 'moved', due: job.due, base: job.base, rev: job.rev };
      if (job.rev !== request.rev) return { status: 'stale' };
      if (job.due! > now) return { status: 'early', waitMs: job.due! - now };
      scheduledAt = job.due!;
      through = scheduledAt;
      if (plan) {
        const servedBefore = job.served ?? -Infinity;
        if (plan.through < scheduledAt || plan.through > now || plan.through <= servedBefore) return { status: 'stale' };
        if (plan.serve !== null && (plan.serve < scheduledAt || plan.serve > plan.through || plan.serve <= servedBefore)) return { status: 'stale' };
        through = plan.through;
        if (plan.serve !== null) scheduledAt = plan.serve;
      }
      if (request.next && request.next.due <= through) return { status: 'stale' };
      trigger = 'SCHEDULE';
    } else {
      const pending = this.pendingOf(request.name).get(request.member);
      if (!pending) return this.alreadyWon(job, instanceId, ref, now) ?? { status: 'gone' };
      if (job.rev !== request.rev) return { status: 'stale' };
      scheduledAt = pending.requestedAt;
      trigger = pending.trigger;
      retry = parseRetryId(pending.id);
      if (retry && pending.requestedAt > now) return { status: 'early', waitMs: pending.requestedAt - now };
      if (retry) scheduledAt = retry.scheduledAt;
    }
    // As claim.lua: a task's attempt (dispatched, or its retry) is outside the lock and the overlap policy, within `concurrency`.
    const dispatchedTask = request.member !== undefined ? parseTaskTriggerId(this.pendingOf(request.name).get(request.member)!.id) : null;
    const taskRetry = retry?.taskId ?? dispatchedTask;
    if (request.next && request.next.due <= (job.served ?? -Infinity)) return { status: 'stale' };
    // As claim.lua: a manual trigger restarts the period only if it runs.
    // As claim.lua: a due time an earlier catch-up claim planned (up to the episode's end) is a catch-up run too.
    const catchUp = (plan?.catchUp === true && plan.serve !== null) || (request.member === undefined && !plan && scheduledAt <= (job.catchUpTo ?? -Infinity));
    // As claim.lua: catch-up runs go one at a time, and due fires wait for a catch-up run.
    if (request.member === undefined && plan?.serve !== null) {
      const live = scheduledRuns(liveLeases(job, now)) as (RunLease & { ref?: string })[];
      const holder = live.find((lease) => catchUp || lease.catchUp) ?? (catchUp ? live[0] : undefined);
      if (holder) return { status: 'busy', holder: holder.instanceId, expiresAt: holder.expiresAt };
    }
    const advance = (runs = false) => {
      if (request.member !== undefined) this.pendingOf(request.name).delete(request.member);
      else {
        job.served = through;
        if (plan && plan.skipped > 0) job.skippedMissed += plan.skipped;
      }
      if (request.next && !job.paused && (request.member === undefined || runs)) {
        job.base = request.next.base;
        job.due = request.next.due;
      }
    };
    if (plan && plan.serve === null) {
      advance();
      return { status: 'missed', skipped: plan.skipped, through: through! };
    }
    if (request.member === undefined && request.threshold !== undefined && now - scheduledAt > request.threshold) {
      job.skippedLate++;
      advance();
      return { status: 'late', scheduledAt, lateMs: now - scheduledAt };
    }
    if (taskRetry !== null && request.concurrency !== undefined) {
      const tasks = liveLeases(job, now).filter((lease) => lease.taskId !== undefined);
      if (tasks.length >= request.concurrency) {
        const holder = tasks.reduce((earliest, lease) => (lease.expiresAt < earliest.expiresAt ? lease : earliest));
        return { status: 'busy', holder: holder.instanceId, expiresAt: holder.expiresAt };
      }
    }
    if (job.locked && job.locked.until !== null && job.locked.until <= now) job.locked = null;
    if (job.locked && taskRetry === null) {
      advance();
      return { status: 'skipped', reason: 'locked', holder: job.locked.by, scheduledAt };
    }
    // As claim.lua: the overlap policy sees the job's scheduled runs only, never its tasks.
    const live = scheduledRuns(liveLeases(job, now));
    if (live.length === 0) job.queued = false;
    // As claim.lua: a task's retry is taken outside the manual lock and the overlap policy.
    if (live.length > 0 && job.overlap !== 'allow' && taskRetry === null) {
      const holder = live[0].instanceId;
      if (job.overlap === 'skip') {
        advance();
        return { status: 'skipped', reason: 'running', holder, scheduledAt };
      }
      if (job.overlap === 'queue-one') {
        advance();
        job.queued = true;
        return { status: 'queued', holder, scheduledAt };
      }
      for (const lease of live) {
        job.leases.delete(lease.fencingToken);
        this.emit({ type: 'cancel', name: job.name, fencingToken: lease.fencingToken, reason: 'replaced' });
      }
    }
    const fencingToken = Math.max(job.fence + 1, now);
    job.fence = fencingToken;
    const marked = catchUp ? { catchUp: true } : {};
    const retried = retry
      ? { attempt: retry.attempt, first: retry.firstFencingToken, ...(taskRetry !== null ? { taskId: taskRetry } : {}) }
      : taskRetry !== null
        ? { taskId: taskRetry }
        : {};
    job.leases.set(fencingToken, { fencingToken, instanceId, scheduledAt, startedAt: now, expiresAt: now + lockTtl, trigger, ref, ...marked, ...retried });
    // As claim.lua: a task's attempt is no job run: no last run, no checkpoint fence.
    const attempt = retry ? { attempt: retry.attempt } : {};
    if (taskRetry === null) job.lastRun = { fencingToken, instanceId, trigger, scheduledAt, startedAt: now, finishedAt: null, status: 'running', error: null, ...marked, ...attempt };
    // As claim.lua: an episode continues while its next catch-up due time is one an earlier claim planned.
    const continued = catchUp && (job.catchUpTo ?? -Infinity) >= request.due!;
    if (catchUp) {
      job.catchUpRuns++;
      if (plan) job.catchUpTo = plan.episodeTo;
    }
    advance(true);
    const checkpoint = this.checkpointAtClaim(job.name, taskRetry === null ? fencingToken : undefined);
    return { status: 'claimed', fencingToken, scheduledAt, startedAt: now, trigger, catchUp, continued, checkpoint, ...retryOf(job.leases.get(fencingToken)!) };
  }

  /** As claim.lua: the job's checkpoint, and its fence raised to the new run's token if it has one. */
  private checkpointAtClaim(name: string, fencingToken?: number): StoredCheckpoint | null {
    const entry = this.checkpoints.get(name);
    if (!entry) return null;
    if (fencingToken !== undefined) entry.floor = Math.max(entry.floor, fencingToken);
    return entry.stored && { ...entry.stored };
  }

  /** A claim this replica won already, sent again: the same answer while its lease lives (as claim.lua). */
  private alreadyWon(job: StoredJob, instanceId: string, ref: string, now: number): ClaimResult | null {
    for (const lease of job.leases.values()) {
      if (lease.instanceId === instanceId && lease.ref === ref && lease.expiresAt > now) {
        const { fencingToken, scheduledAt, startedAt, trigger } = lease;
        const catchUp = lease.catchUp === true;
        return { status: 'claimed', fencingToken, scheduledAt, startedAt, trigger, catchUp, continued: catchUp, checkpoint: this.checkpointAtClaim(job.name), ...retryOf(lease) };
      }
    }
    return null;
  }

  /** Runs `control` once per request id; the same id again gets the first answer. */
  private once<T>(requestId: string | undefined, control: () => T, keep: (answer: T) => boolean = () => true): T {
    if (requestId === undefined || requestId === '') return control();
    const now = Date.now();
    for (const [id, { until }] of this.answers) if (until <= now) this.answers.delete(id);
    const seen = this.answers.get(requestId);
    if (seen) return seen.answer as T;
    const answer = control();
    if (keep(answer)) this.answers.set(requestId, { until: now + REQUEST_ID_TTL_MS, answer });
    return answer;
  }

  async extend(leases: { name: string; fencingToken: number }[], lockTtl: number): Promise<boolean[]> {
    const now = Date.now();
    return leases.map(({ name, fencingToken }) => {
      const lease = this.jobs.get(name)?.leases.get(fencingToken);
      if (lease) lease.expiresAt = now + lockTtl;
      return lease !== undefined;
    });
  }

  async finish(reports: RunReport[]): Promise<boolean[]> {
    return reports.map((report) => this.finishOne(report));
  }

  private finishOne(report: RunReport): boolean {
    const job = this.jobs.get(report.name);
    if (!job) return false;
    const lease = job.leases.get(report.fencingToken);
    if (!job.leases.delete(report.fencingToken)) {
      // Sent again after it was applied (as finish.lua): the same answer, nothing written.
      const last = job.lastRun;
      return last?.fencingToken === report.fencingToken && last.finishedAt !== null && last.status === report.status;
    }
    const now = Date.now();
    if (job.lastRun?.fencingToken === report.fencingToken) {
      Object.assign(job.lastRun, { finishedAt: now, status: report.status, error: report.error });
    }
    if (job.queued) {
      job.queued = false;
      const member = `${job.name}\nSCHEDULE\nqueued`;
      const pending = this.pendingOf(job.name, true);
      if (!pending.has(member)) {
        pending.set(member, { name: job.name, id: 'queued', trigger: 'SCHEDULE', requestedAt: now });
        this.triggersKeptUntil.set(job.name, now + PENDING_TRIGGERS_TTL_MS);
        this.changeCount++;
        this.emit({ type: 'trigger', name: job.name, member, id: 'queued', trigger: 'SCHEDULE', requestedAt: now, version: this.changeCount });
      }
    }
    // As finish.lua: the run's next attempt, a pending trigger not claimable before its time.
    if (report.retryDelay !== undefined && lease) {
      const id = retryId({
        attempt: (lease.attempt ?? 1) + 1,
        scheduledAt: lease.scheduledAt,
        firstFencingToken: lease.first ?? lease.fencingToken,
        taskId: lease.taskId ?? null,
      });
      const member = `${job.name}\n${lease.trigger}\n${id}`;
      const at = now + report.retryDelay;
      this.pendingOf(job.name, true).set(member, { name: job.name, id, trigger: lease.trigger, requestedAt: at });
      this.triggersKeptUntil.set(job.name, Math.max(this.triggersKeptUntil.get(job.name) ?? 0, at + PENDING_TRIGGERS_TTL_MS));
      this.changeCount++;
      this.emit({ type: 'trigger', name: job.name, member, id, trigger: lease.trigger, requestedAt: at, version: this.changeCount });
    }
    return true;
  }

  async requestTrigger(name: string, trigger: JobTrigger, id: string, idTtl = 0, requestId?: string): Promise<TriggerOutcome> {
    return this.once(requestId, () => this.requestTriggerNow(name, trigger, id, idTtl), (outcome) => outcome.status !== 'unknown' && outcome.status !== 'full');
  }

  private requestTriggerNow(name: string, trigger: JobTrigger, id: string, idTtl: number): TriggerOutcome {
    const job = this.jobs.get(name);
    if (!job) return { status: 'unknown' };
    const now = Date.now();
    const key = `${name}\n${id}`;
    if (idTtl > 0) {
      for (const [seen, { until }] of this.requestIds) if (until <= now) this.requestIds.delete(seen);
      const seen = this.requestIds.get(key);
      if (seen) return seen.outcome;
    }
    let outcome: TriggerOutcome | undefined;
    if (job.locked && job.locked.until !== null && job.locked.until <= now) job.locked = null;
    if (job.locked) {
      outcome = { status: 'skipped', reason: 'locked', holder: job.locked.by, requestedAt: now };
    } else if (job.overlap === 'skip') {
      const live = scheduledRuns(liveLeases(job, now));
      if (live.length > 0) outcome = { status: 'skipped', reason: 'running', holder: live[0].instanceId, requestedAt: now };
    }
    if (!outcome) {
      const member = `${name}\n${trigger}\n${id}`;
      const pending = this.pendingOf(name, true);
      const existing = pending.get(member);
      if (existing) {
        outcome = { status: 'accepted', requestedAt: existing.requestedAt };
      } else {
        // As trigger.lua: dispatched tasks and pending retries are not callers' requests.
        const requests = [...pending.values()].filter((queued) => parseTaskTriggerId(queued.id) === null && !parseRetryId(queued.id)).length;
        if (requests >= MAX_PENDING_TRIGGERS) return { status: 'full', pending: requests };
        pending.set(member, { name, id, trigger, requestedAt: now });
        this.triggersKeptUntil.set(name, now + this.pendingTriggersTtl);
        this.changeCount++;
        this.emit({ type: 'trigger', name, member, id, trigger, requestedAt: now, version: this.changeCount });
        outcome = { status: 'accepted', requestedAt: now };
      }
    }
    if (idTtl > 0) this.requestIds.set(key, { until: now + idTtl, outcome });
    return outcome;
  }

  async pause(name: string, requestId?: string): Promise<boolean> {
    return this.once(
      requestId,
      () => {
        const job = this.jobs.get(name);
        if (!job) return false;
        // As pause.lua: a resume computed before this pause is refused as stale.
        if (!job.paused) job.rev += 1;
        Object.assign(job, { paused: true, base: null, due: null });
        this.announceChanged([name]);
        return true;
      },
      (known) => known,
    );
  }

  async reschedule(name: string, request: RescheduleRequest): Promise<'ok' | 'stale' | 'unknown'> {
    return this.once(request.requestId, () => this.rescheduleNow(name, request), (outcome) => outcome !== 'unknown');
  }

  private rescheduleNow(name: string, request: RescheduleRequest): 'ok' | 'stale' | 'unknown' {
    const job = this.jobs.get(name);
    if (!job) return 'unknown';
    if (job.rev !== request.rev) return 'stale';
    if (request.next && request.next.due <= (servedDue(job) ?? -Infinity)) return 'stale';
    if (request.spec !== undefined) {
      job.spec = request.spec;
      job.rev += 1;
    }
    if (request.resume && job.paused) {
      job.paused = false;
      if (request.spec === undefined) job.rev += 1;
    }
    const next = !job.paused ? request.next : null;
    job.base = next?.base ?? null;
    job.due = next?.due ?? null;
    this.announceChanged([name]);
    return 'ok';
  }

  async lock(name: string, holder: string, ttl: number | null, requestId?: string): Promise<LockOutcome | 'unknown'> {
    return this.once(requestId, () => this.lockNow(name, holder, ttl), (outcome) => outcome !== 'unknown');
  }

  private lockNow(name: string, holder: string, ttl: number | null): LockOutcome | 'unknown' {
    const job = this.jobs.get(name);
    if (!job) return 'unknown';
    const now = Date.now();
    const live = scheduledRuns(liveLeases(job, now));
    if (live.length > 0) return { status: 'refused', reason: 'running', holder: live[0].instanceId };
    if (job.locked && job.locked.until !== null && job.locked.until <= now) job.locked = null;
    if (job.locked && job.locked.by !== holder) return { status: 'refused', reason: 'locked', holder: job.locked.by };
    job.locked = { by: holder, until: ttl ? now + ttl : null };
    this.announceChanged([name]);
    return { status: 'locked' };
  }

  async unlock(name: string, holder: string, requestId?: string): Promise<boolean> {
    return this.once(
      requestId,
      () => {
        const job = this.jobs.get(name);
        if (!job) return false;
        if (job.locked?.by === holder) {
          job.locked = null;
          this.announceChanged([name]);
        }
        return true;
      },
      (known) => known,
    );
  }

  async acquireSlot(name: string, instanceId: string, lockTtl: number, max: number): Promise<SlotOutcome> {
    // As slot.lua: one step, so at most `max` live leases whatever the callers believe.
    const job = this.jobs.get(name);
    if (!job) return { status: 'unknown' };
    if (job.paused) return { status: 'paused' };
    const now = Date.now();
    const sessionLives = (who: string) => (this.sessions.get(who)?.expiresAt ?? 0) > now;
    if (!sessionLives(instanceId)) return { status: 'no-session' };
    // As slot.lua: a holder whose session lapsed holds its slot no longer.
    const live = liveLeases(job, now).filter((lease) => {
      if (sessionLives(lease.instanceId)) return true;
      job.leases.delete(lease.fencingToken);
      this.emit({ type: 'cancel', name, fencingToken: lease.fencingToken, reason: 'replaced' });
      return false;
    });
    const own = live.find((lease) => lease.instanceId === instanceId);
    if (own) return { status: 'held', fencingToken: own.fencingToken, startedAt: own.startedAt, expiresAt: own.expiresAt };
    if (live.length >= max) {
      return { status: 'full', holders: live.map(({ instanceId: holder, fencingToken, expiresAt }) => ({ instanceId: holder, fencingToken, expiresAt })) };
    }
    const fencingToken = Math.max(job.fence + 1, now);
    job.fence = fencingToken;
    job.leases.set(fencingToken, { fencingToken, instanceId, scheduledAt: now, startedAt: now, expiresAt: now + lockTtl, trigger: 'EVENT' });
    return { status: 'acquired', fencingToken, startedAt: now, expiresAt: now + lockTtl };
  }

  async stop(name: string, fencingToken: number, requestId?: string): Promise<boolean> {
    return this.once(requestId, () => this.stopNow(name, fencingToken));
  }

  private stopNow(name: string, fencingToken: number): boolean {
    const job = this.jobs.get(name);
    const lease = job?.leases.get(fencingToken);
    if (!job || !lease) return false;
    // An expired lease's replica is gone: nothing to stop (as stop.lua).
    if (lease.expiresAt <= Date.now()) return job.leases.delete(fencingToken) && false;
    this.emit({ type: 'cancel', name, fencingToken, reason: 'stopped' });
    // As stop.lua: what a finish would do is done here, since the aborted run's lease is gone.
    this.finishOne({ name, fencingToken, status: 'stopped', error: 'stopped by a caller' });
    return true;
  }

  async cancelRetries(name: string, match: RetryMatch): Promise<number> {
    const pending = this.pendingOf(name);
    let removed = 0;
    for (const [member, trigger] of pending) {
      const retry = parseRetryId(trigger.id);
      if (!retry) continue;
      if (match.taskId !== undefined && retry.taskId !== match.taskId) continue;
      if (match.firstFencingToken !== undefined && retry.firstFencingToken !== match.firstFencingToken) continue;
      pending.delete(member);
      removed++;
    }
    if (removed > 0) this.announceChanged([name]);
    return removed;
  }

  /**
   * Nothing to recover: the leases live in the one process that runs them, so a replica that
   * dies takes its coordinator with it. A lease that expires here belongs to a run this process
   * still has; its own lease timer aborts it (lease-lost).
   */
  async expiredLeases(): Promise<ExpiredLeases> {
    return { expired: [], nextExpiry: null };
  }

  async recoverLeases(runs: RecoveryRequest[]): Promise<RecoveryOutcome[]> {
    return runs.map(({ name, fencingToken }) => ({ status: 'gone', name, fencingToken }));
  }

  async saveCheckpoint(name: string, fencingToken: number, state: string, savedAt: number): Promise<CheckpointSaveOutcome> {
    // As checkpoint.lua: below the checkpoint's fence or the job's latest token (a newer run was issued), or the job is gone.
    const job = this.jobs.get(name);
    if (!job) return { status: 'stale', floor: 0 };
    const floor = Math.max(this.checkpoints.get(name)?.floor ?? 0, job.fence);
    if (fencingToken < floor) return { status: 'stale', floor };
    this.checkpoints.set(name, { stored: { state, savedAt, fencingToken }, floor: fencingToken });
    return { status: 'saved' };
  }

  async readCheckpoint(name: string): Promise<StoredCheckpoint | null | 'unknown'> {
    if (!this.jobs.has(name)) return 'unknown';
    return this.checkpointAtClaim(name);
  }

  async clearCheckpoint(name: string): Promise<boolean> {
    const job = this.jobs.get(name);
    if (!job) return false;
    const floor = Math.max(this.checkpoints.get(name)?.floor ?? 0, job.fence);
    this.checkpoints.set(name, { stored: null, floor });
    return true;
  }

  async exportState(): Promise<ExportedState> {
    const now = Date.now();
    const jobs = [...this.jobs.keys()].sort().map((name): ExportedJob => {
      const job = this.jobs.get(name)!;
      const locked = job.locked && (job.locked.until === null || job.locked.until > now) ? { ...job.locked } : null;
      const entry = this.checkpoints.get(name);
      return {
        name,
        definition: job.definition,
        definitionHash: job.definitionHash,
        definedBy: job.definedBy,
        definedAt: job.definedAt,
        superseded: [...job.superseded],
        spec: job.spec,
        rev: job.rev,
        overlap: job.overlap,
        paused: job.paused,
        base: job.base,
        due: job.due,
        served: servedDue(job),
        lastRun: job.lastRun ? { ...job.lastRun } : null,
        skippedLate: job.skippedLate,
        fence: job.fence,
        locked,
        checkpoint: entry
          ? { state: entry.stored?.state ?? null, savedAt: entry.stored?.savedAt ?? null, fencingToken: entry.stored?.fencingToken ?? null, fence: entry.floor }
          : null,
      };
    });
    return { now, version: String(this.changeCount), epoch: 'embedded', jobs, corrupt: [] };
  }

  /** As restore.lua: each job written only if missing, `served` and the fences raised to now. */
  async restoreState(jobs: JobRestore[]): Promise<RestoreOutcome[]> {
    const now = Date.now();
    const restored: string[] = [];
    const outcomes = jobs.map(({ job, first, fenceFloor, exact }): RestoreOutcome => {
      const { name } = job;
      if (this.jobs.has(name)) return { name, outcome: 'present' };
      if (first && first.due <= now && !exact) return { name, outcome: 'passed', now };
      const fence = Math.max(fenceFloor, job.fence, now);
      const stored: StoredJob = {
        name,
        rev: job.rev,
        spec: job.spec,
        overlap: job.overlap,
        paused: job.paused,
        base: first?.base ?? null,
        due: first?.due ?? null,
        definition: job.definition,
        definitionHash: job.definitionHash,
        definedBy: job.definedBy,
        definedAt: job.definedAt,
        fence,
        locked: job.locked ? { ...job.locked } : null,
        queued: false,
        lastRun: job.lastRun ? { ...job.lastRun } : null,
        leases: new Map(),
        skippedLate: job.skippedLate,
        // Not in snapshots: counted again from the restore (as restore.lua leaves them unset).
        skippedMissed: 0,
        catchUpRuns: 0,
        catchUpTo: null,
        // As restore.lua: kept from a final snapshot, raised to now from any other.
        served: exact ? (job.served ?? 0) : Math.max(job.served ?? 0, now),
        superseded: [...job.superseded],
      };
      this.jobs.set(name, stored);
      if (job.checkpoint && !this.checkpoints.has(name)) {
        const { state, savedAt, fencingToken } = job.checkpoint;
        this.checkpoints.set(name, {
          stored: state !== null ? { state, savedAt: savedAt ?? 0, fencingToken: fencingToken ?? 0 } : null,
          floor: Math.max(job.checkpoint.fence, fence + 1),
        });
      }
      restored.push(name);
      return { name, outcome: 'restored' };
    });
    this.announceChanged(restored);
    return outcomes;
  }

  async describe(names?: string[]): Promise<JobRecord[]> {
    const now = Date.now();
    const wanted = names ?? [...this.jobs.keys()].sort();
    return wanted.flatMap((name) => {
      const job = this.jobs.get(name);
      if (!job) return [];
      const locked = job.locked && (job.locked.until === null || job.locked.until > now) ? { ...job.locked } : null;
      return [
        {
          ...toState(job),
          definedAt: job.definedAt,
          locked,
          running: liveLeases(job, now).map(({ ref: _ref, first, ...lease }: StoredLease) => ({ ...lease, ...(first !== undefined ? { firstFencingToken: first } : {}) })),
          queued: job.queued,
          pendingTriggers: this.pendingOf(name).size,
          pendingRetries: this.retriesOf(name),
          lastRun: job.lastRun ? { ...job.lastRun } : null,
          skippedLate: job.skippedLate,
          skippedMissed: job.skippedMissed,
          catchUpRuns: job.catchUpRuns,
          // No run outlives this process's coordinator: nothing is ever recovered (see expiredLeases).
          recoveredRuns: 0,
          abandonedRuns: 0,
          awaitingRecovery: [],
          served: servedDue(job),
        },
      ];
    });
  }

  /** A job's pending retries, the soonest first (as RedisCoordinator reads them). */
  private retriesOf(name: string): PendingRetry[] {
    const retries: PendingRetry[] = [];
    for (const pending of this.pendingOf(name).values()) {
      const retry = parseRetryId(pending.id);
      if (!retry) continue;
      const { attempt, scheduledAt, firstFencingToken, taskId } = retry;
      retries.push({ attempt, scheduledAt, notBefore: pending.requestedAt, trigger: pending.trigger, firstFencingToken, ...(taskId !== null ? { taskId } : {}) });
    }
    return retries.sort((a, b) => a.notBefore - b.notBefore);
  }

  /** A job's pending triggers; `create` makes the set when it is missing. */
  async dispatchTasks(tasks: TaskDispatchRequest[]): Promise<boolean[]> {
    const now = Date.now();
    return tasks.map(({ name, taskId }) => {
      if (!this.jobs.has(name)) return false;
      // As dispatch.lua: not capped, not refused by the lock or a live run; pending once.
      const id = taskTriggerId(taskId);
      const member = taskMember(name, taskId);
      const pending = this.pendingOf(name, true);
      if (pending.has(member)) return true;
      pending.set(member, { name, id, trigger: 'EVENT', requestedAt: now });
      this.triggersKeptUntil.set(name, Math.max(this.triggersKeptUntil.get(name) ?? 0, now + this.pendingTriggersTtl));
      this.changeCount++;
      this.emit({ type: 'trigger', name, member, id, trigger: 'EVENT', requestedAt: now, version: this.changeCount });
      return true;
    });
  }

  async tasksPending(name: string, taskIds: number[]): Promise<boolean[]> {
    const pending = this.pendingOf(name);
    return taskIds.map((taskId) => pending.has(taskMember(name, taskId)));
  }

  async stopTask(name: string, taskId: number, requestId?: string): Promise<TaskStopOutcome> {
    return this.once(requestId, () => {
      // As stop-task.lua: the pending dispatch and retries of the task go, its live leases are revoked.
      let withdrawn = 0;
      let revoked = 0;
      const pending = this.pendingOf(name);
      for (const [member, trigger] of pending) {
        if (taskOfTrigger(trigger.id) === taskId) withdrawn += Number(pending.delete(member));
      }
      const job = this.jobs.get(name);
      for (const lease of job ? liveLeases(job, Date.now()) : []) {
        if (lease.taskId !== taskId) continue;
        job!.leases.delete(lease.fencingToken);
        this.emit({ type: 'cancel', name, fencingToken: lease.fencingToken, reason: 'stopped' });
        revoked++;
      }
      return { withdrawn, revoked };
    });
  }

  private pendingOf(name: string, create = false): Map<string, StoredTrigger> {
    if ((this.triggersKeptUntil.get(name) ?? Infinity) <= Date.now()) {
      this.triggers.delete(name);
      this.triggersKeptUntil.delete(name);
    }
    let pending = this.triggers.get(name);
    if (!pending) {
      pending = new Map();
      if (create) this.triggers.set(name, pending);
    }
    return pending;
  }

  private announceChanged(names: string[]): void {
    if (names.length === 0) return;
    this.changeCount++;
    this.emit({ type: 'changed', names, version: this.changeCount });
  }

  /** Delivered on a later tick, as a pub/sub message would be, never inside the caller's call. */
  private emit(event: CoordinationEvent): void {
    queueMicrotask(() => {
      if (!this.events.closed) this.events.next(event);
    });
  }
}

/** A retry lease's part of a 'claimed' answer (nothing for a first attempt). */
function retryOf(lease: StoredLease): Pick<Extract<ClaimResult, { status: 'claimed' }>, 'attempt' | 'firstFencingToken' | 'taskId'> {
  if (lease.attempt === undefined) return lease.taskId !== undefined ? { taskId: lease.taskId } : {};
  return { attempt: lease.attempt, firstFencingToken: lease.first, ...(lease.taskId !== undefined ? { taskId: lease.taskId } : {}) };
}

function toState(job: StoredJob): JobState {
  const { name, rev, spec, overlap, paused, base, due, definition, definedBy } = job;
  return { name, rev, spec, overlap, paused, base, due, definition, definedBy };
}

/** As `served_due` in common.lua: the latest due time claimed, or the last run's scheduled time. */
function servedDue(job: StoredJob): number | null {
  const candidates = [job.served, job.lastRun?.scheduledAt].filter((value): value is number => value != null);
  return candidates.length > 0 ? Math.max(...candidates) : null;
}

/** As scheduled_runs in common.lua: the job's own runs, without its tasks' leases. */
function scheduledRuns<T extends RunLease>(leases: T[]): T[] {
  return leases.filter((lease) => lease.taskId === undefined);
}

/** A dispatched task's pending trigger, as dispatch.lua writes it. */
function taskMember(name: string, taskId: number): string {
  return `${name}\nEVENT\n${taskTriggerId(taskId)}`;
}

function liveLeases(job: StoredJob, now: number): RunLease[] {
  for (const [token, lease] of job.leases) if (lease.expiresAt <= now) job.leases.delete(token);
  return [...job.leases.values()];
}
