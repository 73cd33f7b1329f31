import type { Observable } from 'rxjs';
import type { OverlapPolicy } from '../scheduling/distributed-job-options.interface';
import type { JobTrigger } from '../scheduling/job-context.interface';
import type { SharedJobDefinition } from '../scheduling/job-definition';
import type { NextFire, ScheduleSpec } from '../scheduling/schedule';
import type { CoordinatorClock } from '../scheduling/coordinator-clock';
import type { CheckpointSaveOutcome, StoredCheckpoint } from '../checkpoint/checkpoint.interface';
import type { HeartbeatReply, MemberReport, MembersReading } from '../cluster/member-record.interface';

/** The part of a job's shared state a replica needs to schedule it. */
export interface JobState {
  name: string;
  /** Revision of the schedule; bumped when `spec` changes, so a fire computed from an old one is refused. */
  rev: number;
  spec: ScheduleSpec | null;
  overlap: OverlapPolicy;
  paused: boolean;
  /** The current fire without jitter; null while paused or for an on-demand job. */
  base: number | null;
  /** When the current fire is due (epoch ms); null while paused or for an on-demand job. */
  due: number | null;
  /** The code definition in force, and the replica that registered it. */
  definition: SharedJobDefinition;
  definedBy: string;
}

/**
 * `abandoned`: the run's lease expired without a finish (its replica was killed, paused past its
 * lease or cut off); its next attempt recovers it if its job's `retry.attempts` allows one.
 */
export type RunStatus = 'running' | 'success' | 'error' | 'timeout' | 'stopped' | 'abandoned';

export interface RunLease {
  fencingToken: number;
  instanceId: string;
  scheduledAt: number;
  startedAt: number;
  expiresAt: number;
  trigger: JobTrigger;
  taskId?: number;
  /** True for a run serving a missed due time (`ctx.catchUp`). */
  catchUp?: boolean;
  /** Which attempt of its run this is (`ctx.attempt`), when a retry: absent for a first attempt. */
  attempt?: number;
  /** A retry's first attempt's fencing token (absent for a first attempt). */
  firstFencingToken?: number;
}

/** A failed run's next attempt, waiting in the coordinator (a pending trigger of its job). */
export interface PendingRetry {
  /** The attempt it starts (2 for the first retry). */
  attempt: number;
  /** The due time (or request time) the run serves. */
  scheduledAt: number;
  /** Not claimed before this time (coordinator's clock). */
  notBefore: number;
  trigger: JobTrigger;
  /** The fencing token of the run's first attempt. */
  firstFencingToken: number;
  /** For a task's retry: the task. */
  taskId?: number;
}

export interface LastRun {
  fencingToken: number;
  instanceId: string;
  trigger: JobTrigger;
  scheduledAt: number;
  startedAt: number;
  finishedAt: number | null;
  status: RunStatus;
  error: string | null;
  /** True for a run serving a missed due time. */
  catchUp?: boolean;
  /** A retry's attempt (absent for a first attempt). */
  attempt?: number;
}

/** Everything the coordinator knows of a job, for `describe` and `list`. */
export interface JobRecord extends JobState {
  definedAt: number;
  locked: { by: string; until: number | null } | null;
  running: RunLease[];
  queued: boolean;
  /** Pending triggers, pending retries included. */
  pendingTriggers: number;
  /** Failed runs' next attempts waiting for their time (at most `MAX_PENDING_TRIGGERS` read). */
  pendingRetries: PendingRetry[];
  lastRun: LastRun | null;
  /** Scheduled fires skipped for being later than the job's `threshold`. */
  skippedLate: number;
  /** Missed due times consumed without a run by the job's missed-run policy (`missedSkips`). */
  skippedMissed: number;
  /** Runs that served a missed due time (`catchUps`). */
  catchUpRuns: number;
  /** Runs whose replica died (lease expired without a finish) that a new attempt recovered. */
  recoveredRuns: number;
  /** Runs whose replica died with no attempt left to recover them (`retry.attempts` used up; 1 by default). */
  abandonedRuns: number;
  /** Leases expired without a finish and not recovered yet (recovery comes within a heartbeat). */
  awaitingRecovery: RunLease[];
  /**
   * The latest due time served (run, skipped or found late), or its last run's scheduled time:
   * the coordinator refuses a next due time at or before it, which would run that fire again.
   */
  served: number | null;
}

/**
 * A key of a job that holds what no script wrote (edited by hand, or by another program): the
 * coordinator writes nothing for that job and answers this instead, so the other jobs of the
 * same call go on.
 */
export interface CorruptKey {
  name: string;
  /** The Redis key (on the embedded coordinator, which cannot be corrupted, never given). */
  key: string;
  /** What is wrong with it, in words: `its field "rev" is not a number: "x"`. */
  problem: string;
}

export interface JobRegistration {
  name: string;
  definition: SharedJobDefinition;
  definitionHash: string;
  /** The schedule and paused flag to create the job with, if not the definition's (a restore). */
  runtime?: { spec: ScheduleSpec | null; paused: boolean };
  /** The first fire if the job is created now; null for an on-demand or paused job. */
  first: NextFire | null;
}

/**
 * `boot`: this replica's code is the newest, so a definition that differs from the stored one
 * replaces it; only what changed is applied (a changed schedule re-bases the job, a changed
 * `paused` pauses or resumes it, anything else leaves the schedule, the due time and a runtime
 * pause alone). Except a superseded definition: one that a boot replaced (among the job's last
 * `MAX_SUPERSEDED_DEFINITIONS`) does not replace the one in force while a live replica other
 * than the caller declares it (`superseded`), so an old replica restarting during or after a
 * rolling deploy cannot take the cluster back; once none does (the last one left, or its member
 * entry expired), it replaces it as any boot does, which is how a rollback takes over. A
 * replica declares the definition of its latest registration, in either mode; a live replica is
 * one in the set `heartbeat` keeps.
 * `restore`: re-creating jobs that Redis lost; an existing definition is kept, and
 * a job is created only with a due time still ahead of the coordinator's clock (`passed`
 * otherwise): one that has come may have been served before the loss.
 * `offer`: a replica answered `superseded` offers its definition again when the live replicas
 * change. As `boot`, except that it never creates a job (`missing`) and replaces only a
 * definition still remembered as superseded (`differs` otherwise: that memory was lost with
 * Redis's state, or pushed out by later deploys), so an offer cannot take a cluster back blindly.
 */
export type RegistrationMode = 'boot' | 'restore' | 'offer';

/** How many of a job's definitions replaced by a boot the coordinator remembers as superseded. */
export const MAX_SUPERSEDED_DEFINITIONS = 8;

export type RegistrationOutcome =
  | { name: string; outcome: 'created' | 'unchanged' }
  /** Offer only: the coordinator does not have the job; nothing was written. */
  | { name: string; outcome: 'missing' }
  /** Restore only: the job was not created, its due time is not after `now` (the coordinator's clock). */
  | { name: string; outcome: 'passed'; now: number }
  /**
   * `replaced`: this definition is now in force, `other` was. `differs` (restore, offer): `other` stays.
   * `superseded` (boot): this definition was replaced before and `other`, in force, is declared by
   * a live replica: `other` stays, set by `otherBy`.
   */
  | { name: string; outcome: 'replaced' | 'differs' | 'superseded'; other: SharedJobDefinition; otherBy: string }
  /** The stored job is corrupt: left as it is, nothing written. */
  | { name: string; outcome: 'corrupt'; key: string; problem: string };

export interface PendingTrigger {
  name: string;
  /** Opaque identity of the request in the coordinator. */
  member: string;
  /** The request's id (a manual trigger's receipt id; `start` or `queued` for the others). */
  id: string;
  trigger: JobTrigger;
  requestedAt: number;
}

/**
 * The most triggers one job may have pending. Beyond it a request is refused (`full`), so one
 * caller cannot fill Redis, and a snapshot or description reads at most this many per job.
 */
export const MAX_PENDING_TRIGGERS = 100;

/**
 * How long a job's pending triggers are kept when no replica claims them, i.e. no live replica
 * declares the job: every accepted trigger starts it over. A replica that has the job claims a
 * trigger within milliseconds, so this bounds only what would otherwise wait forever.
 */
export const PENDING_TRIGGERS_TTL_MS = 60 * 60_000;

/** The coordinator's answer to a trigger request; a request id sent again gets the first answer. */
export type TriggerOutcome =
  | { status: 'accepted'; requestedAt: number }
  /** Seen at request time: the job is locked, or (overlap `skip`) a run is going. Nothing is queued. */
  | { status: 'skipped'; reason: 'running' | 'locked'; holder: string; requestedAt: number }
  /** The job already has `MAX_PENDING_TRIGGERS` pending; nothing is queued or remembered. */
  | { status: 'full'; pending: number }
  | { status: 'unknown' };

/** A task for `dispatchTasks`: its job and its id in the records. */
export interface TaskDispatchRequest {
  name: string;
  taskId: number;
}

/** What `stopTask` found: pending entries it removed (dispatch, retries) and leases it revoked. */
export interface TaskStopOutcome {
  withdrawn: number;
  revoked: number;
}

export interface ClaimRequest {
  name: string;
  /** The schedule revision `next` was computed from. */
  rev: number;
  /** The fire to run next if this claim wins; null for an on-demand job. */
  next: NextFire | null;
  /** A due fire (`expectedDue`) or a pending trigger (`member`). */
  due?: number;
  member?: string;
  /** A due fire claimed more than this many ms after its due time is skipped (`late`). */
  threshold?: number;
  /** For a due fire: what to do with due times that were missed (the replica's plan); absent for an ordinary claim. */
  missed?: ClaimMissedPlan;
  /**
   * For a task (a dispatched one or a task's retry): the job's `concurrency`. While that many of
   * the job's tasks hold live leases, the claim answers `busy` and consumes nothing.
   */
  concurrency?: number;
}

/**
 * A claim of a due time that was not served in its own period, as the replica planned it from
 * the job's schedule and missed-run policy. The coordinator checks it against what it knows
 * (`stale` otherwise): `serve` and `through` between the expected due time and now and after the
 * latest due time served, the next due time after `through`.
 */
export interface ClaimMissedPlan {
  /** The due time the run serves (its `scheduledAt`); null: nothing runs (answered `missed`). */
  serve: number | null;
  /** The run serves a missed due time: it is a catch-up run, and runs one at a time. */
  catchUp: boolean;
  /** Missed due times this claim consumes without a run (counted in `skippedMissed`). */
  skipped: number;
  /** The latest due time this claim consumes: no due time at or before it is set again. */
  through: number;
  /** The latest missed due time the plan knows of: claims up to it continue one catch-up episode. */
  episodeTo: number;
}

export type ClaimResult =
  | {
      status: 'claimed';
      fencingToken: number;
      scheduledAt: number;
      startedAt: number;
      trigger: JobTrigger;
      /** The run serves a missed due time. */
      catchUp?: boolean;
      /** A catch-up run that continues an episode already begun (an `all` policy's next run): not announced again. */
      continued?: boolean;
      /**
       * The job's checkpoint as the claim found it (null for none), read in the same atomic step
       * (the run starts with it, no extra round trip). A claim of a job with a checkpoint raises
       * the checkpoint's fence to the new token: no earlier run can overwrite it from then on.
       */
      checkpoint?: StoredCheckpoint | null;
      /** A retry: which attempt (2 or more), the first attempt's fencing token, and the task it runs, if any. */
      attempt?: number;
      firstFencingToken?: number;
      taskId?: number;
    }
  /** Someone else took the fire, or the job changed: here is where it stands now. */
  | { status: 'moved'; due: number | null; base: number | null; rev: number }
  /** The schedule changed since `rev`: read it again. */
  | { status: 'stale' }
  /** Not due yet by the coordinator's clock. */
  | { status: 'early'; waitMs: number }
  /** The fire was consumed without a run: the job was locked or (overlap `skip`) still running. */
  | { status: 'skipped'; reason: 'running' | 'locked'; holder: string; scheduledAt: number }
  | { status: 'queued'; holder: string; scheduledAt: number }
  /** The fire was consumed without a run: it was claimed later than the request's `threshold`. */
  | { status: 'late'; scheduledAt: number; lateMs: number }
  /** The plan runs nothing: the missed due times were consumed without a run, and counted. */
  | { status: 'missed'; skipped: number; through: number }
  /**
   * Not consumed: a catch-up claim while a run of the job lives, or a due fire while a catch-up
   * run lives (catch-up runs go one at a time). Claim it again once that run has ended.
   */
  | { status: 'busy'; holder: string; expiresAt: number }
  /** The job is gone from the coordinator (Redis lost its data): register it again. */
  | { status: 'missing' }
  /** The trigger was taken by another replica. */
  | { status: 'gone' }
  /** A key of the job holds what no script wrote: nothing was written for it. */
  | { status: 'corrupt'; key: string; problem: string };

/** A lease whose expiry has passed by the coordinator's clock: its run's replica stopped renewing it. */
export interface ExpiredLease {
  name: string;
  fencingToken: number;
  /** When it expired (coordinator's clock), as last renewed. */
  expiredAt: number;
}

export interface ExpiredLeases {
  /** The soonest-expired first, at most the number asked for. */
  expired: ExpiredLease[];
  /** When the next lease known now expires unless renewed (coordinator's clock); null if none. */
  nextExpiry: number | null;
}

/** A dead run to recover, with how many attempts its job allows in all (`retry.attempts`). */
export interface RecoveryRequest extends Pick<ExpiredLease, 'name' | 'fencingToken'> {
  attempts: number;
}

/** What a dead run's lease told of it when it was recovered or abandoned. */
export interface DeadRun {
  name: string;
  fencingToken: number;
  instanceId: string;
  scheduledAt: number;
  trigger: JobTrigger;
  /** When its lease expired (coordinator's clock). */
  expiredAt: number;
  firstFencingToken: number;
  taskId?: number;
}

export type RecoveryOutcome =
  /** Its next attempt (`attempt`) is a pending retry due now: any replica with the job claims it. */
  | (DeadRun & { status: 'recovered'; attempt: number })
  /** No attempt left (`attempt` was its last): ended as `abandoned`, counted in `abandonedRuns`. */
  | (DeadRun & { status: 'abandoned'; attempt: number })
  /** Renewed meanwhile: not dead. */
  | { status: 'alive'; name: string; fencingToken: number; expiresAt: number }
  /** Ended meanwhile (finished, stopped), or recovered by another replica. */
  | { status: 'gone'; name: string; fencingToken: number }
  /** What it ran was no longer kept (past the recovery grace): counted in `abandonedRuns`, nothing started. */
  | { status: 'lost'; name: string; fencingToken: number }
  | { status: 'corrupt'; name: string; fencingToken: number; key: string; problem: string };

/** Which pending retries `cancelRetries` removes: a task's, or those of the run whose first attempt had this token. */
export interface RetryMatch {
  taskId?: number;
  firstFencingToken?: number;
}
/** A live slot lease of a continuous job, as `acquireSlot` names the holders of a full job. */
export interface SlotHolder {
  instanceId: string;
  fencingToken: number;
  expiresAt: number;
}

/** The coordinator's answer to `acquireSlot`. */
export type SlotOutcome =
  /** A new slot lease, with its own fencing token; `startedAt` on the coordinator's clock. */
  | { status: 'acquired'; fencingToken: number; startedAt: number; expiresAt: number }
  /** This instance holds a live slot lease of the job already (an earlier reply was lost): that one. */
  | { status: 'held'; fencingToken: number; startedAt: number; expiresAt: number }
  /** `max` live leases of the job exist: nothing written. Ask again once one is released or expires. */
  | { status: 'full'; holders: SlotHolder[] }
  /**
   * The caller has no live cluster session (its heartbeats have not reached the coordinator for
   * its session TTL): no slot is given until its next heartbeat, since a lease of a replica
   * without a session does not count and would be revoked by the next slot request.
   */
  | { status: 'no-session' }
  /** The job is paused: no slot is given. */
  | { status: 'paused' }
  | { status: 'unknown' };

export interface RunReport {
  name: string;
  fencingToken: number;
  status: Exclude<RunStatus, 'running'>;
  error: string | null;
  /**
   * The run is tried again this many ms after its lease is released (Redis's clock), as a pending
   * retry written in the same step; only if the lease is still the run's.
   */
  retryDelay?: number;
}

/**
 * How long a coordinator remembers a request id and its answer. ioredis sends an unanswered
 * command again once it has reconnected (and a caller may retry one that timed out); the
 * answer to a request id must outlive that, so the window is far longer than any reconnection
 * a client that gives up on commands (`maxRetriesPerRequest` a number) can take.
 */
export const REQUEST_ID_TTL_MS = 24 * 3_600_000;

export interface RescheduleRequest {
  /** The revision the change was computed from; a job changed since (or paused or resumed) answers `stale`. */
  rev: number;
  /** Makes the call idempotent: the same id sent again gets the first answer and changes nothing. */
  requestId?: string;
  /** A new schedule (`updateSchedule`); undefined keeps the current one. */
  spec?: ScheduleSpec | null;
  /** Clears `paused` (`resume`). */
  resume?: boolean;
  next: NextFire | null;
}

export type LockOutcome = { status: 'locked' } | { status: 'refused'; reason: 'running' | 'locked'; holder: string };

/** A live run lease, as the replica holding it needs to know it. */
export interface OwnLease {
  name: string;
  fencingToken: number;
  scheduledAt: number;
  startedAt: number;
  /** When the lease expires unless renewed (coordinator's clock): an adopted run must give it up before. */
  expiresAt: number;
  trigger: JobTrigger;
  /** For a dispatched task's lease: the task's id. */
  taskId?: number;
  /** A catch-up run's lease. */
  catchUp?: boolean;
  /** A retry's lease: its attempt (2 or more) and the first attempt's fencing token. */
  attempt?: number;
  firstFencingToken?: number;
}

export interface JobsSnapshot {
  states: JobState[];
  /** Names asked for that the coordinator does not have. */
  missing: string[];
  /** The pending triggers of the jobs asked about (only theirs). */
  triggers: PendingTrigger[];
  /** The caller's own live leases: a run whose claim reply was lost shows up here. */
  ownLeases: OwnLease[];
  /** Jobs asked for whose keys are corrupt: neither in `states` nor in `missing`. */
  corrupt: CorruptKey[];
}

/**
 * One job's whole shared state, as a snapshot keeps it and a restore writes it back: the
 * definition in force and the runtime state (schedule, pause, manual lock, last due time served,
 * last run, fencing counter, checkpoint). Leases, pending triggers and a queued run are not part
 * of it: they belong to runs that a loss of state ends anyway.
 */
export interface ExportedJob {
  name: string;
  definition: SharedJobDefinition;
  definitionHash: string;
  definedBy: string;
  definedAt: number;
  /** Hashes of the definitions a boot replaced (superseded definitions), oldest first. */
  superseded: string[];
  /** The schedule in force (the code's, or a runtime override). */
  spec: ScheduleSpec | null;
  rev: number;
  overlap: OverlapPolicy;
  paused: boolean;
  base: number | null;
  due: number | null;
  /** The latest due time served (`JobRecord.served`). */
  served: number | null;
  lastRun: LastRun | null;
  skippedLate: number;
  /** The job's fencing counter: the latest token it issued. */
  fence: number;
  locked: { by: string; until: number | null } | null;
  /** The job's checkpoint (null if it never had one); `state` null once cleared, `fence` kept. */
  checkpoint: { state: string | null; savedAt: number | null; fencingToken: number | null; fence: number } | null;
}

/** Every job of the coordinator, read for a snapshot. */
export interface ExportedState {
  /** The coordinator's clock when it was read. */
  now: number;
  /** The change version and epoch when it was read. */
  version: string;
  epoch: string;
  jobs: ExportedJob[];
  /** Jobs left out because a key of theirs holds what no script wrote. */
  corrupt: CorruptKey[];
}

/**
 * A job to write back from a snapshot, if the coordinator does not have it. `first` is the due
 * time to set (computed by the caller after the snapshot's `served` and the coordinator's clock;
 * null for a paused or on-demand job); `fenceFloor` the least fencing counter to restore (the
 * snapshot's counter, and its time of writing).
 */
export interface JobRestore {
  job: ExportedJob;
  first: NextFire | null;
  fenceFloor: number;
  /**
   * The snapshot says all that ran (it is final): the job's `served` is restored as it was and
   * `first` may have come already, so the missed-run policy serves the due times since. Otherwise
   * `served` is raised to the coordinator's clock and `first` must be ahead of it.
   */
  exact: boolean;
}

export type RestoreOutcome =
  /** Written back: the job was missing. */
  | { name: string; outcome: 'restored' }
  /** The coordinator has the job (another replica restored it first, or it was never lost): nothing written. */
  | { name: string; outcome: 'present' }
  /** Not written (never for an exact restore): `first` is not after the coordinator's clock (`now`); compute a later one. */
  | { name: string; outcome: 'passed'; now: number };

/**
 * `version` on a change or a trigger is the change version it made: a replica that has seen
 * every version up to the one its heartbeat reads missed no message.
 */
export type CoordinationEvent =
  | { type: 'changed'; names: string[]; version?: number }
  | { type: 'trigger'; name: string; member: string; id: string; trigger: JobTrigger; requestedAt: number; version?: number }
  /** A run must abort: replaced by a newer fire (`cancel-previous`) or stopped by a caller. */
  | { type: 'cancel'; name: string; fencingToken: number; reason: 'replaced' | 'stopped' }
  /** A replica joined or left. */
  | { type: 'members' };

/**
 * Where replicas agree on what runs when. Every method is atomic on the coordinator's side, and
 * every write that depends on what the caller saw carries it (a due time, a revision, a fencing
 * token), so a late, repeated or raced call changes nothing it should not.
 */
export abstract class Coordinator {
  abstract readonly kind: 'redis' | 'embedded';
  /**
   * This replica's estimate of the coordinator's clock, learned from its replies. Due times are
   * computed on it, never on the local clock, and not before it is `known`.
   */
  abstract readonly clock: CoordinatorClock;
  /** Changes made by any replica, for this replica to follow. */
  abstract readonly events$: Observable<CoordinationEvent>;
  /** True while the coordinator answers; each false → true transition asks for a full resync. */
  abstract readonly available$: Observable<boolean>;
  abstract isAvailable(): boolean;
  abstract describeTarget(): string;
  /**
   * True if a call failed because the coordinator could not be reached, rather than refusing it.
   * A failure can arrive before the connection's own events say it is down.
   */
  isUnreachableError(_error: unknown): boolean {
    return !this.isAvailable();
  }

  /** Where a job's state is kept, in the words of a log line (a Redis key). */
  jobKey(name: string): string {
    return `job "${name}"`;
  }

  abstract connect(): Promise<void>;
  abstract close(): Promise<void>;
  abstract ping(): Promise<void>;

  abstract register(jobs: JobRegistration[], mode: RegistrationMode, instanceId: string): Promise<RegistrationOutcome[]>;
  abstract snapshot(names: string[], instanceId: string): Promise<JobsSnapshot>;
  /**
   * Keeps this replica in the live set for `sessionTtl` more ms (or, with `leave`, takes it out
   * and records it as departed at shutdown) with what it `report`s of itself (a worker without
   * labels nor runs when omitted), expires every member whose session lapsed (departed,
   * expired), and returns the live set with each member's record, the recent departures, the
   * change version, which moves whenever a job changes other than by a claim, and the epoch of
   * the shared state, which changes when the coordinator loses it.
   */
  abstract heartbeat(instanceId: string, sessionTtl: number, leave?: boolean, report?: MemberReport): Promise<HeartbeatReply>;
  /** The live members with what each runs (as of its latest heartbeat); writes nothing. */
  abstract readMembers(): Promise<MembersReading>;

  /**
   * Claims fires. Idempotent: a claim this replica already won, sent again while its lease lives,
   * answers `claimed` with the same token. When a call of many fails part way, it rejects with
   * `ClaimInterruptedError` carrying the results already obtained.
   */
  abstract claim(requests: ClaimRequest[], instanceId: string, lockTtl: number): Promise<ClaimResult[]>;
  /**
   * Renews leases; false for each one that was lost (expired and taken, or cancelled), a
   * `CorruptKey` for one whose key is corrupt (not renewed).
   */
  abstract extend(leases: { name: string; fencingToken: number }[], lockTtl: number): Promise<(boolean | CorruptKey)[]>;
  /**
   * Releases runs' leases and records their results; false for each lease already lost, a
   * `CorruptKey` for a job whose keys are corrupt (nothing written for it). A report sent again
   * whose result is already recorded as the job's last run answers true.
   */
  abstract finish(reports: RunReport[]): Promise<(boolean | CorruptKey)[]>;

  /**
   * Requests a run. A job locked by hand, or (overlap `skip`) running, answers `skipped` at once
   * and queues nothing. With `idTtl`, the id and its answer are remembered that long and a second
   * request with it gets the same answer without running again (resent requests run once);
   * without, requests with the same id coalesce while pending. A job with
   * `MAX_PENDING_TRIGGERS` pending answers `full`.
   */
  abstract requestTrigger(name: string, trigger: JobTrigger, id: string, idTtl?: number, requestId?: string): Promise<TriggerOutcome>;
  /**
   * Pauses the job and bumps its revision, so a resume computed before the pause is refused.
   *
   * Every control below takes a `requestId`: a call sent again with it (by the client after a
   * reconnection, or by a caller whose call timed out) gets its first answer for
   * `REQUEST_ID_TTL_MS` and changes nothing more.
   */
  abstract pause(name: string, requestId?: string): Promise<boolean>;
  /** `stale` if the job changed since `request.rev`, or if `request.next` is not after the job's `served` due time. */
  abstract reschedule(name: string, request: RescheduleRequest): Promise<'ok' | 'stale' | 'unknown'>;
  abstract lock(name: string, holder: string, ttl: number | null, requestId?: string): Promise<LockOutcome | 'unknown'>;
  /** Releases the job's manual lock if `holder` still holds it. */
  abstract unlock(name: string, holder: string, requestId?: string): Promise<boolean>;
  /**
   * The named jobs (a `CorruptJobError` for one whose keys are corrupt), or every job registered
   * (the corrupt ones left out, with a warning naming each).
   */
  abstract describe(names?: string[]): Promise<JobRecord[]>;
  /**
   * Takes a slot lease of a continuous job for `instanceId`: a run lease with its own fencing
   * token (from the job's counter), refused (`full`) while `max` live leases of the job exist,
   * atomically with that count, so the job never has more than `max` live leases whatever the
   * callers believe. One per instance: an instance that holds a live one gets it back (`held`).
   * A lease counts only while its holder's session (`heartbeat`) lives: a holder whose session
   * lapsed has its lease revoked (a `cancel` event) and its slot given to the caller, so a dead
   * holder is replaced within its session TTL, not its lockTtl; a caller without a live session
   * gets none (`no-session`). Renewed by `extend` and released by `finish` as any run lease; a
   * paused job gives none.
   */
  abstract acquireSlot(name: string, instanceId: string, lockTtl: number, max: number): Promise<SlotOutcome>;
  /** Revokes a run's lease and tells its replica to abort it; false if no live lease has that token. */
  abstract stop(name: string, fencingToken: number, requestId?: string): Promise<boolean>;
  /**
   * Removes the pending retries of a run between two attempts (`stop()` of a task or run waiting
   * for its next attempt), so no next attempt runs; returns how many were removed (0: none was
   * pending, or its attempt was claimed already: stop that run's lease instead).
   */
  abstract cancelRetries(name: string, match: RetryMatch): Promise<number>;

  /**
   * The leases whose expiry has passed by the coordinator's clock and that no run finished: their
   * replica died (killed, paused past its lease, cut off). Cheap: one read of the soonest expiries.
   */
  abstract expiredLeases(limit: number): Promise<ExpiredLeases>;
  /**
   * Recovers dead runs, each atomically and once across the cluster: its lease is removed and the
   * job's fence raised (the dead run can no longer finish or checkpoint), and its next attempt is
   * added as a pending retry due now if the run's attempt is below `attempts`; otherwise it is
   * ended as `abandoned` and counted.
   */
  abstract recoverLeases(runs: RecoveryRequest[]): Promise<RecoveryOutcome[]>;
  /**
   * Puts tasks where any replica with their job can take them: each a pending trigger of its job
   * (id `task:<task id>`, trigger `EVENT`), announced like any trigger, not counted against the
   * trigger limit. Per task, false if its job is unknown. A task sent again is pending once.
   */
  abstract dispatchTasks(tasks: TaskDispatchRequest[]): Promise<boolean[]>;
  /**
   * Stops a task wherever it is, in one step: its pending dispatch and pending retries are
   * removed (no replica starts it afterwards), and its live leases revoked (their replicas are
   * told to abort them). A claim that took it before finds its lease revoked; one after, nothing.
   */
  abstract stopTask(name: string, taskId: number, requestId?: string): Promise<TaskStopOutcome>;
  /**
   * Which of these tasks of the job still wait to be claimed for their first attempt (their
   * `task:<id>` trigger is pending): a backlog behind `concurrency`, however old, is not abandoned.
   */
  abstract tasksPending(name: string, taskIds: number[]): Promise<boolean[]>;

  /**
   * Reads every job's whole state (for a snapshot), in batches: never a single long call however
   * many jobs there are. Jobs with a corrupt key are left out and listed.
   */
  abstract exportState(): Promise<ExportedState>;
  /**
   * Writes jobs back from a snapshot, each only if the coordinator does not have it, atomically
   * per job with that check (replicas restoring together write each job once; one that is
   * present is never overwritten). A restored job's `served` is raised to the coordinator's
   * clock, so no due time that came before the restore is set again (one may have run after the
   * snapshot was written), and its fencing counter and checkpoint fence to at least that clock
   * and `fenceFloor`: every token issued after the restore is greater than every earlier one.
   * A job whose `first` has come by the coordinator's clock is not written (`passed`).
   */
  abstract restoreState(jobs: JobRestore[], instanceId: string): Promise<RestoreOutcome[]>;

  /**
   * Writes a run's checkpoint (`state`: JSON text; `savedAt`: epoch ms) unless it is fenced: the
   * job's checkpoint keeps a floor, the highest of the tokens that wrote it, that claimed the job
   * while it had one, or that it was cleared at; a write with a token below it is refused
   * (`stale`), so a run that was replaced cannot overwrite its successor's progress. A write
   * with the floor's own token (the same run again, or a resend) is applied.
   */
  abstract saveCheckpoint(name: string, fencingToken: number, state: string, savedAt: number): Promise<CheckpointSaveOutcome>;
  /** The job's checkpoint; null if none (never written, or cleared); `unknown` if the job is. */
  abstract readCheckpoint(name: string): Promise<StoredCheckpoint | null | 'unknown'>;
  /**
   * Deletes the job's checkpoint but keeps its floor, raised to the job's latest fencing token:
   * no run older than the latest one can write it again. False if the job is unknown.
   */
  abstract clearCheckpoint(name: string): Promise<boolean>;
}
